"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis): no
input makes the server fail (5xx), and every error has OpenAI's JSON shape."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from hadis.profiles import load_profile  # noqa: E402
from hadis.serve import ServeConfig, build_app  # noqa: E402
from tests.serve_helpers import running_server  # noqa: E402


def _app():
    cfg = ServeConfig(workers=4, slo_s=60, time_scale=0.01, docs=True, max_queue=100_000)
    return build_app(
        load_profile("hadis-l40s"), cfg, executor="instant", router="reference",
        discriminator="reference",
    )  # fmt: skip


schema = schemathesis.openapi.from_dict(_app().openapi())


@pytest.fixture(scope="module")
def base():
    with running_server(_app()) as url:
        yield url


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_server_and_errors_are_openai_shaped(case, base) -> None:
    response = case.call(base_url=base, timeout=30)
    assert response.status_code < 500, (case.body, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert {"type", "param", "code"} <= set(error)
