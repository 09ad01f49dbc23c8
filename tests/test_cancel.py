"""Cancellation: a client that gives up frees its queue slot (engine and over HTTP)."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from hadis.engine import DROPPED, SERVED, Query
from hadis.serve import ServeConfig, build_app
from tests.conftest import make_profile
from tests.engine_helpers import make_plan
from tests.serve_helpers import running_server
from tests.test_engine import engine_for


@pytest.fixture
def pool():
    return make_profile([1.0, 4.0], [30.0, 20.0], lambda i, j, r, d: 25.0)


def test_engine_cancel_frees_a_queued_query_and_leaves_running_ones(pool):
    eng, rec = engine_for(pool, workers=1, slo=1000.0)
    eng.apply_plan(0.0, make_plan({"m0": 1}, {"m0": 1}, "m0"))
    for c in list(eng.workers):
        if c.switching:
            eng.worker_ready(0.0, c.wid)
    running, queued, later = Query(0, 0.0, 0), Query(1, 0.1, 1), Query(2, 0.2, 2)
    for q in (running, queued, later):
        eng.submit(q.arrival_s, q)
    assert eng.queue_lengths() == {"m0": 2}
    assert eng.cancel(0.3, queued) is True
    assert queued.status == DROPPED and queued.drop_reason == "cancelled"
    assert eng.queue_lengths() == {"m0": 1}
    assert eng.cancel(0.3, running) is False  # in a batch: left alone
    assert eng.cancel(0.3, queued) is False  # already ended
    eng.batch_done(1.0, 0)
    assert running.status == SERVED
    assert [q.qid for q in rec.queries].count(1) == 1  # ended exactly once


def test_a_client_that_disconnects_frees_its_queue_slot(paper_profile):
    # one worker, real time: the first request occupies it for a batch of >= 0.5 s
    config = ServeConfig(workers=1, time_scale=1.0, slo_s=60.0, initial_demand_qps=0.05)
    app = build_app(paper_profile, config, executor="profile")
    with running_server(app) as base, httpx.Client(base_url=base) as client:
        first = threading.Thread(
            target=lambda: client.post(
                "/v1/images/generations", json={"prompt": "one"}, timeout=120
            )
        )
        first.start()
        time.sleep(0.1)
        # the client gives up and closes its connection
        with contextlib.suppress(httpx.TimeoutException):
            httpx.post(f"{base}/v1/images/generations", json={"prompt": "two"}, timeout=0.3)
        freed = busy_then = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not freed:
            queues = httpx.get(f"{base}/v1/plan").json()["queues"]
            freed = sum(queues.values()) == 0
            busy_then = first.is_alive()  # the only worker still runs the first batch
            time.sleep(0.1)
        first.join(timeout=120)
    assert freed, "the abandoned request still holds its queue slot"
    assert busy_then, "freed by the worker taking it, not by the cancel"
