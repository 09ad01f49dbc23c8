"""The demo pipeline: train a few steps, save, load through the diffusers executor."""

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from hadis import bundled
from hadis.demo.pipeline import HadisDemoPipeline
from hadis.demo.train import ModelSpec, train_model
from hadis.profiles import ConfigRow, Direction, Metric, ModelVariant, Profile
from hadis.workers.executors import DiffusersExecutor, pipeline_class

SPEC = ModelSpec("mini", channels=(16, 32), steps=3, batch=4)


@pytest.fixture(scope="module")
def mini_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "mini"
    summary = train_model(SPEC, out)
    assert summary["parameters"] > 0 and np.isfinite(summary["final_loss"])
    return out


def test_saved_folder_is_a_diffusers_pipeline_with_portable_components(mini_model):
    index = json.loads((mini_model / "model_index.json").read_text())
    assert index["_class_name"] == "HadisDemoPipeline"
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert (mini_model / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert pipeline_class(str(mini_model)) is HadisDemoPipeline
    pipe = HadisDemoPipeline.from_pretrained(mini_model, local_files_only=True)
    ids = pipe.tokenizer(["a red circle left of a blue square"]).input_ids[0]
    assert ids[0] == 1 and ids[-1] == 2 and 3 not in ids  # BOS .. EOS, no unknown word
    with pytest.raises(ValueError, match="32x32"):
        pipe("a red circle", height=64, width=64)


def test_same_seed_same_weights_with_or_without_rendering_workers(tmp_path, mini_model):
    name = "unet/diffusion_pytorch_model.safetensors"
    train_model(SPEC, tmp_path / "again")
    assert (tmp_path / "again" / name).read_bytes() == (mini_model / name).read_bytes()
    train_model(SPEC, tmp_path / "workers", workers=2)
    assert (tmp_path / "workers" / name).read_bytes() == (mini_model / name).read_bytes()
    summary = train_model(SPEC, tmp_path / "cut", max_seconds=0.0)
    assert summary["steps_done"] == 1  # stopped after its first step, and still saved
    assert (tmp_path / "cut" / name).exists()


def test_unseen_backgrounds_are_left_out_of_training_batches():
    from hadis.demo.pipeline import build_tokenizer
    from hadis.demo.train import _batch

    spec = ModelSpec("gap", channels=(16, 32), steps=1, batch=64, unseen_backgrounds=("white",))
    x, _ = _batch(spec, 0, build_tokenizer())
    corners = ((x[:, :, 0, 0] + 1) * 127.5).numpy()  # objects never reach the corners
    assert corners.max() < 200  # white is 245; black 10 and gray 128 remain
    assert len({round(float(c)) for c in corners[:, 0]}) == 2


def test_executor_loads_and_generates_seeded_pngs(mini_model):
    variant = ModelVariant("mini-2", str(mini_model), 2, 2.0, (32, 32), 1.0, {1: 0.1}, 4)
    other = dataclasses.replace(variant, name="mini-3", steps=3)
    profile = Profile(
        "mini",
        "cpu",
        Metric("FID", Direction.LOWER),
        (variant, other),
        (ConfigRow("mini-2", "mini-3", 0.0, 0.0, 0.0, 1.0, 0.1),),
    )
    ex = DiffusersExecutor(profile, local_files_only=True)
    assert ex.load("mini-2") >= 0
    out = ex.generate("mini-2", ["a red circle", "a blue square"], [1, 2], (32, 32))
    images = [Image.open(io.BytesIO(b)) for b in out.images]
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    again = ex.generate("mini-2", ["a red circle"], [1], (32, 32))
    assert again.images[0] == out.images[0]  # seed 1 alone == seed 1 in a batch
    assert ex.generate("mini-2", ["a red circle"], [3], (32, 32)).images[0] != out.images[0]


def test_bundled_paths_resolve_inside_the_package():
    assert Path(bundled.resolve("hadis:demo/pool.yaml")).is_file()
    assert bundled.resolve("runwayml/stable-diffusion-v1-5") == "runwayml/stable-diffusion-v1-5"


def test_variants_of_one_model_share_the_loaded_pipeline(mini_model):
    a = ModelVariant("mini-2", str(mini_model), 2, 0.0, (32, 32), 1.0, {1: 0.1}, 4)
    b = dataclasses.replace(a, name="mini-3", steps=3)
    profile = Profile("mini", "cpu", Metric("FID", Direction.LOWER), (a, b), ())
    ex = DiffusersExecutor(profile, local_files_only=True)
    ex.load("mini-2")
    pipe = ex._pipe
    ex.load("mini-3")
    assert ex._pipe is pipe
    two = ex.generate("mini-2", ["a red circle"], [0], (32, 32)).images[0]
    three = ex.generate("mini-3", ["a red circle"], [0], (32, 32)).images[0]
    assert two != three  # the variant's own steps are used
