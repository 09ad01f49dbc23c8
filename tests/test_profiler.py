"""The offline profiler end to end on tiny diffusers pipelines (built here, no downloads)."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("diffusers", reason="needs the [diffusion] extra")
pytest.importorskip("torchmetrics", reason="needs the [diffusion] extra")

from hadis.cli.main import app
from hadis.planner import HadisPolicy, PlanRequest
from hadis.profiles import load_profile, pareto_table
from tests.tiny_pipelines import build_pipeline


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("prof")
    build_pipeline(root / "light", width=4)
    build_pipeline(root / "heavy", width=16)
    pool = {
        "name": "tiny-cpu",
        "gpu_type": "cpu",
        "batch_sizes": [1, 2],
        "device_memory_gib": 0.5,
        "variants": [
            {
                "name": "heavy",
                "source": str(root / "heavy"),
                "steps": 6,
                "resolution": [32, 32],
                "max_batch": 2,
            },
            {
                "name": "light",
                "source": str(root / "light"),
                "steps": 2,
                "resolution": [32, 32],
                "max_batch": 2,
            },
        ],
    }
    (root / "pool.json").write_text(json.dumps(pool))
    (root / "prompts.txt").write_text("\n".join(f"a red circle number {i}" for i in range(6)))
    ref = root / "ref"
    ref.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(ref / f"{i}.png")
    return root


def test_profile_build_end_to_end(inputs):
    out = inputs / "tiny.json"
    args = [
        "profile",
        "build",
        "--pool",
        str(inputs / "pool.json"),
        "--prompts",
        str(inputs / "prompts.txt"),
        "--reference",
        str(inputs / "ref"),
        "--out",
        str(out),
        "--router",
        "random",
        "--discriminator",
        "random",
        "--grid-step",
        "0.5",
        "--repeats",
        "2",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    profile = load_profile(out)
    # models ordered by measured latency; the light one is faster
    assert [m.name for m in profile.models] == ["light", "heavy"]
    light, heavy = profile.models
    assert set(light.latency_s) == {1, 2} and light.latency_s[1] < heavy.latency_s[1]
    assert len(profile.configs) == 9  # one pair x r, d in {0, 0.5, 1}
    row = next(c for c in profile.configs if c.r == 0 and c.d == 0)
    assert row.quality == pytest.approx(light.quality_alone, rel=1e-3)
    row = next(c for c in profile.configs if c.r == 1)
    assert row.quality == pytest.approx(heavy.quality_alone, rel=1e-3)
    assert pareto_table(profile)
    # switch times measured: from disk, and back from host memory (a copy, no disk read)
    for m in profile.models:
        assert m.load_s is not None and m.reload_s is not None and m.reload_s < m.load_s
    # the memory the weights take (the wider pipeline has more), and the pool's device memory
    assert 0 < light.memory_gib < heavy.memory_gib  # type: ignore[operator]
    assert profile.device_memory_gib == 0.5
    plan = HadisPolicy().plan(PlanRequest(profile, 2, 60.0, 1.0))
    assert plan.feasible
    # resumable: cached latencies, images and scores are reused
    work = out.with_suffix(".work")
    stamp = (work / "latency.json").stat().st_mtime
    images = sorted((work / "images" / "light").glob("*.png"))
    assert len(images) == 6
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (work / "latency.json").stat().st_mtime == stamp
    assert load_profile(out).configs == profile.configs
    # the same work folder with other prompts is refused, not silently mixed
    res = CliRunner().invoke(app, [*args, "--max-prompts", "3"])
    assert res.exit_code == 2 and "caches another pool or prompt set" in res.stderr


def test_profile_build_bad_pool(tmp_path):
    bad = tmp_path / "pool.json"
    bad.write_text(json.dumps({"name": "x", "variants": [{"name": "a"}]}))
    res = CliRunner().invoke(
        app,
        [
            "profile",
            "build",
            "--pool",
            str(bad),
            "--prompts",
            str(bad),
            "--reference",
            str(tmp_path),
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert res.exit_code == 2 and "pool file" in res.stderr


def test_diffusers_executor_keeps_the_last_pipeline_in_host_memory(inputs, monkeypatch):
    """Moving back to the model a worker just left reloads nothing from disk, and the
    images are the same as from a fresh load."""
    from hadis.profiling import load_pool
    from hadis.profiling.profiler import profile_stub
    from hadis.workers import executors

    profile = profile_stub(load_pool(inputs / "pool.json"))
    loads = []
    real = executors.pipeline_class

    def counting(source):
        loads.append(source)
        return real(source)

    monkeypatch.setattr(executors, "pipeline_class", counting)
    ex = executors.DiffusersExecutor(profile, host_cache=1)
    first = ex.generate("light", ["a red circle"], [3], (32, 32)).images
    ex.load("heavy")
    ex.load("light")  # from host memory
    assert len(loads) == 2
    assert ex.generate("light", ["a red circle"], [3], (32, 32)).images == first
    none = executors.DiffusersExecutor(profile, host_cache=0)
    none.load("light")
    none.load("heavy")
    none.load("light")
    assert len(loads) == 5  # without a host cache every switch reads the disk


def test_diffusers_executor_keeps_pipelines_on_the_device_when_they_fit(inputs, monkeypatch):
    """With device memory for both (the profile's `device_memory_gib`), moving back reads
    nothing and copies nothing: the very pipeline is kept; with room for one, the one it
    left goes to host memory (here: none kept) and comes back from disk."""
    import dataclasses

    from hadis.profiling import load_pool
    from hadis.profiling.profiler import profile_stub
    from hadis.workers import executors

    stub = profile_stub(load_pool(inputs / "pool.json"))
    sized = executors.DiffusersExecutor(stub)
    memory = {}
    for name in ("light", "heavy"):
        sized.load(name)
        memory[name] = sized.memory_gib()
    assert 0 < memory["light"] < memory["heavy"]
    models = tuple(dataclasses.replace(m, memory_gib=memory[m.name]) for m in stub.models)
    both = sum(memory.values())
    loads = []
    real = executors.pipeline_class
    monkeypatch.setattr(executors, "pipeline_class", lambda s: loads.append(s) or real(s))

    def moves(device_memory_gib):
        profile = dataclasses.replace(stub, models=models, device_memory_gib=device_memory_gib)
        ex = executors.DiffusersExecutor(profile, host_cache=0)
        ex.load("light")
        light = ex._pipe
        ex.load("heavy")
        ex.load("light")
        return ex._pipe is light

    loads.clear()
    assert moves(both * 1.01) and len(loads) == 2
    loads.clear()
    assert not moves(both * 0.99) and len(loads) == 3
