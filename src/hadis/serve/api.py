"""OpenAI-compatible HTTP API over a LiveService (FastAPI).

POST /v1/images/generations  ->  {"created", "data": [{"b64_json", "hadis": {...}}]}
Errors have OpenAI's shape {"error": {"message", "type", "param", "code"}}.
GET /dashboard is the operator's page (serve/dashboard.py; its data behind the API keys).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from hadis import web
from hadis.core.query import DROP_ANSWERS, DropReason
from hadis.serve.admission import Rejected
from hadis.serve.dashboard import DashboardFeed
from hadis.serve.guard import HEALTH_PATHS, GuardMiddleware
from hadis.serve.prom import ServerMetrics
from hadis.serve.protocol import ImageService
from hadis.serve.service import Outcome
from hadis.web import jsonable

access_log = logging.getLogger("hadis.access")
MAX_PROMPT_CHARS = 4000
MAX_FIELD_CHARS = 256  # model, user: logged and echoed, so bounded
MAX_SEED = 2**63 - 1 - 64
MAX_REQUEST_ID = 128
WATCH_AFTER_S = 0.25  # real seconds before a waiting request checks for a closed connection
_SIZE = re.compile(r"^(\d+)x(\d+)$")


class ImageRequest(BaseModel):
    """The fields of OpenAI's images API that hadis uses; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    # strict types: `n: true`, `n: "2"` or `seed: false` are errors, not coerced
    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    n: StrictInt = 1
    size: StrictStr | None = Field(default=None, max_length=32)
    response_format: StrictStr = Field(default="b64_json", max_length=32)
    model: StrictStr | None = Field(default="auto", max_length=MAX_FIELD_CHARS)
    # seeds of a request's n images are seed, seed + 1, ...: all must fit a signed 64-bit
    # generator seed, or one request's bad seed would fail every request in its batch
    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    user: StrictStr | None = Field(default=None, max_length=MAX_FIELD_CHARS)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type_, param
        self.code, self.headers = code, headers or {}


def error_response(err: ApiError) -> JSONResponse:
    body = {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    }
    return JSONResponse(body, status_code=err.status, headers=err.headers)


class RequestIdMiddleware:
    """X-Request-ID in (or a new one) and out; plain ASGI (BaseHTTPMiddleware is slow)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = _request_id(raw)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(raw: bytes | None) -> str:
    """The client's X-Request-ID when it is short printable ASCII, else a new one (a
    header is bytes: anything else must not reach logs, metrics or the response)."""
    if raw and len(raw) <= MAX_REQUEST_ID and all(0x21 <= c <= 0x7E for c in raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex


DEFAULT_SIZE = "1024x1024"  # for pools whose profile gives no resolution (simulation-only)


def pool_sizes(service: ImageService) -> list[str]:
    sizes = dict.fromkeys(
        f"{m.resolution[0]}x{m.resolution[1]}"
        for m in service.profile.models
        if m.resolution is not None
    )
    return list(sizes) or [DEFAULT_SIZE]


def create_app(service: ImageService, metrics: ServerMetrics) -> FastAPI:
    cfg = service.config
    feed = DashboardFeed(service, metrics, gallery=cfg.gallery)
    service.listeners.append(feed)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        feed.start()
        yield
        await feed.stop()
        await service.stop()

    app = FastAPI(
        title="hadis",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if cfg.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if cfg.docs else None,
    )
    app.state.service = service
    app.state.dashboard = feed

    # the dashboard page holds no data (it asks for a key when auth is on); its data does
    open_paths: tuple[str, ...] = (*HEALTH_PATHS, "/dashboard")
    if not cfg.protect_metrics:
        open_paths = (*open_paths, "/metrics")
    app.add_middleware(
        GuardMiddleware,
        api_keys=cfg.api_keys,
        open_paths=open_paths,
        max_body_bytes=cfg.max_body_bytes,
        body_timeout_s=cfg.body_timeout_s,
    )
    if cfg.allowed_origins:  # outside the guard: browsers' preflights carry no key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestIdMiddleware)  # outermost: 401/413 carry a request id too

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        metrics.requests.labels("invalid").inc()
        rid = request.scope.get("state", {}).get("request_id")
        access_log.info(json.dumps({"request_id": rid, "outcome": "invalid"}))
        return error_response(_validation_error(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(ApiError(err.status_code, str(err.detail), "invalid_request_error"))

    def check(body: ImageRequest) -> tuple[tuple[int, int], str | None]:
        if not body.prompt.strip():
            raise ApiError(400, "prompt must not be empty", param="prompt")
        if not 1 <= body.n <= service.config.max_n:
            raise ApiError(
                400, f"n must be between 1 and {service.config.max_n}, got {body.n}", param="n"
            )
        sizes = pool_sizes(service)
        size = body.size or sizes[0]
        match = _SIZE.match(size)
        if not match or size not in sizes:
            raise ApiError(400, f"size must be one of {sizes}, got {size!r}", param="size")
        if body.response_format != "b64_json":
            raise ApiError(
                400,
                "only response_format 'b64_json' is supported "
                f"(hadis does not host image URLs), got {body.response_format!r}",
                param="response_format",
            )
        model = None if body.model in (None, "auto") else body.model
        if model is not None:
            names = [m.name for m in service.profile.models]
            if model not in names:
                raise ApiError(
                    400,
                    f"unknown model {model!r}; valid: auto, {', '.join(names)}",
                    param="model",
                    code="model_not_found",
                )
            plan = service.plan
            if plan is None or not plan.gpus.get(model):
                raise ApiError(
                    503,
                    f"model {model!r} is not running under the current plan; "
                    "use 'auto' or retry later",
                    "service_unavailable",
                    param="model",
                    code="model_not_loaded",
                    headers={"Retry-After": "5"},
                )
        return (int(match.group(1)), int(match.group(2))), model

    @app.post("/v1/images/generations")
    async def generate(body: ImageRequest, request: Request) -> JSONResponse:
        start = time.perf_counter()
        outcome = "invalid"
        paths: list[str] = []
        try:
            if not service.ready:
                outcome = "not_ready"
                raise ApiError(
                    503,
                    "the server is starting (models loading); retry shortly",
                    "service_unavailable",
                    code="not_ready",
                    headers={"Retry-After": "2"},
                )
            size, model = check(body)
            try:
                service.admit(body.n)
                score = await service.score(body.prompt)
                futures = service.submit(body.prompt, body.n, size, body.seed, model, score)
            except Rejected as e:
                outcome = "rejected"
                raise ApiError(
                    429,
                    str(e),
                    "rate_limit_error",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(service.retry_after_real_s(e))},
                ) from e
            deadline = 2 * service.config.slo_s * service.config.time_scale
            gathered = asyncio.gather(*futures)
            # most requests finish quickly: watch for a closed connection only after that
            first_wait = min(WATCH_AFTER_S, deadline)
            done: set[asyncio.Future[Any]]
            done, _ = await asyncio.wait({gathered}, timeout=first_wait)
            watch: asyncio.Task[None] | None = None
            if not done:
                watch = asyncio.create_task(_client_gone(request))
                waiting: set[asyncio.Future[Any]] = {gathered, watch}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=deadline - first_wait,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                watch.cancel()
            if gathered not in done:
                # the client left or its deadline passed: free its queue slots now
                service.cancel(futures)
                gathered.cancel()
                # its outcome is this error; read it so asyncio does not log it as lost
                gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
                if watch in done:
                    outcome = "disconnected"
                    raise ApiError(499, "the client closed the connection", code="cancelled")
                outcome = "timeout"
                raise ApiError(
                    504, f"deadline of {deadline:.1f}s passed", "timeout", code="deadline_exceeded"
                )
            maybe: list[Outcome | None] = gathered.result()
            paths = [r.path for r in maybe if r is not None]
            results = [r for r in maybe if r is not None]
            if len(results) < len(maybe):
                outcome = "shutdown"
                raise ApiError(
                    503, "the server is shutting down", "service_unavailable", code="shutdown"
                )
            failed = [r for r in results if not r.ok]
            if failed:
                outcome, err = drop_error(failed[0])
                raise err
            outcome = "ok"
            data = [_image_item(r) for r in results]
            feed.record(body.prompt, results[0].image, data[0]["hadis"])
            return JSONResponse({"created": int(time.time()), "data": data})
        finally:
            elapsed = time.perf_counter() - start
            metrics.requests.labels(outcome).inc()
            metrics.request_latency.observe(elapsed)
            access_log.info(
                json.dumps(
                    {
                        "request_id": getattr(request.state, "request_id", None),
                        "outcome": outcome,
                        "n": body.n,
                        "model": body.model,
                        "paths": paths,
                        "seconds": round(elapsed, 4),
                        "user": body.user,
                    }
                )
            )

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(web.page("dashboard"))

    @app.get("/dashboard/state", include_in_schema=False)
    async def dashboard_state() -> JSONResponse:
        return JSONResponse(jsonable(feed.state()))

    @app.get("/dashboard/events", include_in_schema=False)
    async def dashboard_events() -> StreamingResponse:
        return StreamingResponse(
            feed.events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/dashboard/gallery", include_in_schema=False)
    async def dashboard_gallery() -> JSONResponse:
        if feed.gallery is None:
            raise ApiError(
                404,
                "the gallery is off (hadis serve --gallery N keeps the last N requests)",
                code="gallery_off",
            )
        return JSONResponse(jsonable(list(feed.gallery)))

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        snap = service.snapshot()
        workers = snap.engine.worker_states()
        in_service = workers["busy"] + workers["idle"] + workers["switching"]
        if service.ready and in_service > 0:
            # degraded: serving, with some workers out of service (still 200: it serves)
            out = workers["restarting"] + workers["failed"]
            return JSONResponse({"status": "degraded" if out else "ready", "workers": workers})
        if service.ready:
            return error_response(
                ApiError(
                    503,
                    f"not ready: no worker in service ({workers['restarting']} restarting, "
                    f"{workers['failed']} failed)",
                    "service_unavailable",
                    code="no_workers",
                    headers={"Retry-After": "2"},
                )
            )
        if snap.load_errors:
            return error_response(
                ApiError(
                    503,
                    f"not ready: {snap.load_errors[-1]}; retrying (details in the server log)",
                    "service_unavailable",
                    code="load_failed",
                )
            )
        return error_response(
            ApiError(
                503,
                "not ready: models loading",
                "service_unavailable",
                code="not_ready",
                headers={"Retry-After": "2"},
            )
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.refresh_from(service.snapshot())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict:
        names = ["auto", *(m.name for m in service.profile.models)]
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "hadis"} for n in names
            ],
        }

    @app.get("/v1/plan")
    async def plan() -> dict[str, Any]:
        snap = service.snapshot()
        p = snap.plan
        return {
            **service.info(),
            "ready": snap.ready,
            "demand_qps": snap.demand_qps,
            "plan": jsonable(p.to_dict()) if p else None,
            "workers": [
                {
                    "id": w.id,
                    "assigned": w.assigned,
                    "loaded": w.loaded,
                    "busy": w.busy,
                    "switching": w.switching,
                    "state": w.status,
                    "placement": w.placement,
                }
                for w in snap.engine.workers
            ],
            "model_switches": [
                {"worker": w, "model": m, "seconds": s} for w, m, s in snap.switch_seconds
            ],
            "queues": {m: n for m, n in snap.engine.queues.items() if n},
        }

    return app


async def _client_gone(request: Request, every_s: float = 0.25) -> None:
    """Returns once the client has closed the connection."""
    while not await request.is_disconnected():
        await asyncio.sleep(every_s)


def _validation_error(err: RequestValidationError) -> ApiError:
    """FastAPI's validation error as one OpenAI-style 400 naming the parameter."""
    first = err.errors()[0] if err.errors() else {}
    if first.get("type") == "json_invalid":
        return ApiError(400, "the request body is not valid JSON")
    if first.get("loc") == ("body",):
        return ApiError(400, "the request body must be a JSON object")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = loc[-1] if loc else None
    msg = first.get("msg", "invalid request")
    if first.get("type") == "missing":
        msg = f"'{param}' is required"
    return ApiError(400, f"{param}: {msg}" if param else msg, param=param)


def drop_error(r: Outcome) -> tuple[str, ApiError]:
    """The metrics outcome and the API error of a query that ended without an image."""
    reason = r.drop or DropReason.FAILED
    answer = DROP_ANSWERS[reason]
    message = f"{answer.message}: {r.detail}" if r.detail else answer.message
    return answer.outcome, ApiError(answer.status, message, answer.type, code=answer.code)


def _image_item(r: Outcome) -> dict[str, Any]:
    return {
        "b64_json": base64.b64encode(r.image or b"").decode(),
        "hadis": {
            "model": r.model,
            "path": r.path,
            "pair": list(r.pair),
            "router_score": r.router_score,
            "discriminator_confidence": r.confidence,
            "queue_s": round(r.queue_s, 6),
            "total_s": round(r.total_s, 6),
        },
    }
