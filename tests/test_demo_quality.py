"""The bundled demo models: heavy beats light on hard prompts (measured, not looked up)."""

import io

import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusion] extra")

from hadis.demo.evaluate import adherence_report, eval_examples
from hadis.profiles import load_profile
from hadis.workers.executors import DiffusersExecutor

pytestmark = pytest.mark.slow


def test_heavy_adherence_on_hard_prompts_is_above_light():
    profile = load_profile("demo-cpu")
    light, heavy = profile.models[0].name, profile.models[-1].name
    hard = [text for _, text, scene in eval_examples(120) if scene.hard][:40]
    ex = DiffusersExecutor(profile, local_files_only=True)
    report = {}
    for model in (light, heavy):
        images = []
        for k in range(0, len(hard), 8):
            chunk = hard[k : k + 8]
            out = ex.generate(model, chunk, list(range(k, k + len(chunk))), (32, 32))
            images += [Image.open(io.BytesIO(b)) for b in out.images]
        report[model] = adherence_report(images, hard)
    assert report[light]["hard_n"] == report[heavy]["hard_n"] == 40
    # bundled report (300 prompts): 23% vs 48% of clauses, 1.5% vs 15% fully right
    assert report[heavy]["hard_score"] > report[light]["hard_score"] + 0.1
    assert report[heavy]["hard_ok"] > report[light]["hard_ok"]
