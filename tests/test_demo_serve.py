"""End to end on the bundled demo pool: real tiny models served over HTTP on this CPU."""

import base64
import io

import httpx
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusion] extra")
pytest.importorskip("spacy", reason="the demo pool's online router needs the [router] extra")

from hadis.demo.adherence import check
from hadis.profiles import load_profile
from hadis.serve import ServeConfig, build_app
from hadis.textfiles import read_text
from tests.serve_helpers import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    profile = load_profile("demo-cpu")
    s = profile.serving
    app = build_app(
        profile,
        # a cascade with routing and escalation, as the planner picks at 6 q/s
        ServeConfig(workers=s.workers, slo_s=s.slo_s, initial_demand_qps=6.0),
        executor=s.executor,
        router=s.router,
        discriminator=s.discriminator,
        local_files_only=True,
    )
    with running_server(app, timeout_s=180) as base:
        yield base, profile


def _generate(base: str, prompt: str, seed: int) -> tuple[Image.Image, dict]:
    r = httpx.post(
        f"{base}/v1/images/generations",
        json={"prompt": prompt, "size": "32x32", "seed": seed},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    item = r.json()["data"][0]
    img = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
    assert img.format == "PNG" and img.size == (32, 32)
    return img.convert("RGB"), item["hadis"]


def test_serving_defaults_come_from_the_profile(demo):
    base, profile = demo
    plan = httpx.get(f"{base}/v1/plan").json()
    assert plan["executor"] == "diffusers"
    assert plan["router"] == "learned" and plan["discriminator"].startswith("trained")
    assert {m["id"] for m in httpx.get(f"{base}/v1/models").json()["data"]} >= {
        m.name for m in profile.models
    }


def test_easy_prompt_gives_an_image_the_adherence_checker_accepts(demo):
    base, _ = demo
    prompt = "a large red square"  # light and heavy: 8 of seeds 0-7 pass (measured)
    results = [check(_generate(base, prompt, seed)[0], prompt) for seed in range(4)]
    assert sum(r.ok for r in results) >= 3, [r.clauses for r in results]


def test_the_prompt_the_router_ranks_first_goes_straight_to_the_heavy_variant(demo):
    from hadis import bundled
    from hadis.routing.learned import LearnedRouter

    base, profile = demo
    plan = httpx.get(f"{base}/v1/plan").json()["plan"]
    light, heavy = plan["pair"]
    assert plan["r"] > 0
    router = LearnedRouter.load(bundled.resolve(profile.serving.router.split(":", 1)[1]))
    prompts = read_text(bundled.resolve("hadis:demo/prompts.txt"), "prompts").splitlines()[:100]
    ranked = sorted(prompts, key=lambda p: router.score(None, p))
    top, bottom = ranked[-1], ranked[0]
    assert router.score(None, top) > router.threshold(plan["r"])  # within the top r
    _, ext = _generate(base, top, seed=0)
    assert ext["model"] == heavy != light
    assert ext["path"] == "direct-heavy"
    _, low = _generate(base, bottom, seed=0)
    assert low["path"] in ("light", "escalated")  # the router keeps it on the light model
    assert low["router_score"] < ext["router_score"]
