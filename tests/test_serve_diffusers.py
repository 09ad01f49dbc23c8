"""Real diffusers pipelines (tiny, built in the test) served through the full HTTP path."""

import base64
import io

import httpx
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusion] extra")

from hadis.serve import ServeConfig, build_app
from tests.serve_helpers import running_server
from tests.tiny_pipelines import tiny_profile


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_profile(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def server(tiny):
    app = build_app(
        tiny,
        ServeConfig(workers=2, slo_s=60.0, initial_demand_qps=0.5),
        executor="diffusers",
        router="none",
        discriminator="random",
        local_files_only=True,
    )
    with running_server(app, timeout_s=120) as base:
        yield base


def _png(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert img.format == "PNG"
    return img


def test_plan_runs_both_variants(server):
    plan = httpx.get(f"{server}/v1/plan").json()
    assert plan["executor"] == "diffusers" and plan["discriminator"] == "random"
    assert plan["plan"]["gpus"] == {"light": 1, "heavy": 1}
    assert plan["plan"]["d"] == 0.5


def test_images_and_escalation_follow_the_discriminator(server):
    seen = []
    for i in range(12):
        r = httpx.post(
            f"{server}/v1/images/generations",
            json={"prompt": f"a red circle left of a blue square {i}", "size": "32x32", "seed": i},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        item = r.json()["data"][0]
        assert _png(item["b64_json"]).size == (32, 32)
        seen.append(item["hadis"])
    for ext in seen:
        # random discriminator: threshold for d = 0.5 is 0.5
        assert ext["discriminator_confidence"] is not None
        escalate = ext["discriminator_confidence"] < 0.5
        assert (ext["path"] == "escalated") == escalate
        assert ext["model"] == ("heavy" if escalate else "light")
    assert {e["path"] for e in seen} == {"light", "escalated"}


def test_same_seed_same_image(server):
    body = {"prompt": "a green triangle", "size": "32x32", "seed": 42, "model": "light"}
    a = httpx.post(f"{server}/v1/images/generations", json=body, timeout=60).json()
    b = httpx.post(f"{server}/v1/images/generations", json=body, timeout=60).json()
    assert a["data"][0]["b64_json"] == b["data"][0]["b64_json"]
    c = httpx.post(f"{server}/v1/images/generations", json={**body, "seed": 43}, timeout=60).json()
    assert c["data"][0]["b64_json"] != a["data"][0]["b64_json"]


def test_official_openai_client(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    res = client.images.generate(
        prompt="a yellow star", n=2, size="32x32", response_format="b64_json"
    )
    assert len(res.data) == 2
    assert _png(res.data[0].b64_json).size == (32, 32)
    models = [m.id for m in client.models.list()]
    assert models == ["auto", "light", "heavy"]
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(prompt="x", size="64x64")
    assert "size must be one of" in str(e.value)
