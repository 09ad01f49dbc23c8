"""The front door's first checks, as plain ASGI (before FastAPI parses anything):
API keys and the request-body limit.

- Authentication: with API keys configured, every path but the open ones (health probes,
  and /metrics unless protected) needs `Authorization: Bearer KEY`, as OpenAI clients send
  it; keys are compared in constant time; a missing or wrong key gets 401 in OpenAI's
  error shape with `WWW-Authenticate: Bearer`.
- Body size: a request whose Content-Length exceeds the limit gets 413 before its body
  is read; a body that streams past the limit without one is cut off with 413 too (the
  body, at most the limit, is read here and handed to the app).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH_PATHS = ("/healthz", "/readyz")


async def _reply(send: Send, status: int, message: str, code: str, headers=()) -> None:
    body = json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        *,
        api_keys: Iterable[str] = (),
        open_paths: Iterable[str] = HEALTH_PATHS,
        max_body_bytes: int = 1 << 20,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys]
        self.open_paths = frozenset(open_paths)
        self.max_body = max_body_bytes
        self.body_timeout_s = body_timeout_s

    def _authorised(self, scope: Scope) -> bool:
        if not self.keys or scope.get("path") in self.open_paths:
            return True
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        # every key compared, so the time taken does not tell which prefix matched
        matches = [hmac.compare_digest(token.strip(), key) for key in self.keys]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorised(scope):
            await _reply(
                send,
                401,
                "missing or invalid API key: send 'Authorization: Bearer KEY'",
                "invalid_api_key",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413, self._too_large(), "request_too_large")
            return
        # Read the body here, up to the limit: a body that streams past it (no
        # Content-Length) is refused before the app parses any of it.
        chunks: list[bytes] = []
        size = 0
        more = scope.get("method") in ("POST", "PUT", "PATCH")
        # the whole body within body_timeout_s: a client that sends less than its
        # Content-Length (or trickles it) does not hold a connection and a task forever
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        while more:
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except TimeoutError:
                await _reply(
                    send,
                    408,
                    f"the request body did not arrive within {self.body_timeout_s:g}s",
                    "request_timeout",
                )
                return
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _reply(send, 413, self._too_large(), "request_too_large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # e.g. http.disconnect, for disconnect detection

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.max_body:,} bytes"
