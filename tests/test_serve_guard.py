"""The front door: API keys, body limits, docs off by default."""

from __future__ import annotations

import asyncio

from tests.test_serve_api import paper_app, run, with_client


def test_api_keys_guard_everything_but_health_probes_and_metrics(paper_profile):
    app = paper_app(paper_profile, api_keys=("k1", "k2"))

    async def go(c):
        body = {"prompt": "a cat"}
        return await asyncio.gather(
            c.post("/v1/images/generations", json=body),
            c.post("/v1/images/generations", json=body, headers={"authorization": "Bearer nope"}),
            c.post("/v1/images/generations", json=body, headers={"authorization": "Bearer k2"}),
            c.get("/v1/plan"),
            c.get("/v1/models", headers={"authorization": "Basic k1"}),
            c.get("/healthz"),
            c.get("/readyz"),
            c.get("/metrics"),
        )

    none, wrong, ok, plan, basic, health, ready, metrics = run(with_client(app, go))
    for r in (none, wrong, plan, basic):
        assert r.status_code == 401, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer" and r.headers["x-request-id"]
    assert ok.status_code == 200
    assert health.status_code == ready.status_code == metrics.status_code == 200


def test_protected_metrics_need_a_key(paper_profile):
    app = paper_app(paper_profile, api_keys=("k1",), protect_metrics=True)

    async def go(c):
        return await asyncio.gather(
            c.get("/metrics"), c.get("/metrics", headers={"authorization": "Bearer k1"})
        )

    closed, opened = run(with_client(app, go))
    assert closed.status_code == 401 and opened.status_code == 200


def test_bodies_past_the_limit_get_413_and_docs_are_off_by_default(paper_profile):
    app = paper_app(paper_profile, max_body_bytes=4096)

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    async def go(c):
        return await asyncio.gather(
            c.post("/v1/images/generations", content=b"{" + b" " * 10_000 + b"}"),
            c.post("/v1/images/generations", content=chunks()),
            c.post("/v1/images/generations", json={"prompt": "small enough"}),
            c.get("/docs"),
            c.get("/openapi.json"),
        )

    big, streamed, small, docs, spec = run(with_client(app, go))
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert streamed.status_code == 413
    assert small.status_code == 200
    assert docs.status_code == 404 and spec.status_code == 404


def test_docs_when_asked(paper_profile):
    app = paper_app(paper_profile, docs=True)

    async def go(c):
        return await c.get("/openapi.json")

    assert run(with_client(app, go)).status_code == 200


def test_a_body_that_never_arrives_gets_408(paper_profile):
    """A client that announces a body and sends none holds nothing past --body-timeout."""
    import asyncio
    import json

    from hadis.serve import ServeConfig, build_app

    app = build_app(paper_profile, ServeConfig(workers=1, body_timeout_s=0.2), executor="instant")
    sent: list[dict] = []

    async def never() -> dict:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/images/generations",
        "raw_path": b"/v1/images/generations",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("h", 80),
        "client": ("c", 1),
        "root_path": "",
    }

    async def go() -> float:
        loop = asyncio.get_running_loop()
        t = loop.time()
        await asyncio.wait_for(app(scope, never, send), 5)
        return loop.time() - t

    took = asyncio.run(go())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if "body" in m))
    assert start["status"] == 408 and body["error"]["code"] == "request_timeout"
    assert took < 2
