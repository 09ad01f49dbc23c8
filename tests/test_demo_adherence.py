"""The demo world's adherence checker and FID features, on rendered scenes."""

import numpy as np
import pytest
from PIL import Image

from hadis.demo.adherence import analyse, check, parse_prompt
from hadis.demo.features import DIMS, world_features
from hadis.demo.world import Obj, Scene, example, render


def test_parse_prompt_reads_objects_relations_size_and_background():
    spec = parse_prompt(
        "two shapes: a red circle left of a blue square on a gray background, "
        "and a large green triangle above the circle"
    )
    assert [(o.colour, o.shape, o.size) for o in spec.objects] == [
        ("red", "circle", None),
        ("blue", "square", None),
        ("green", "triangle", "large"),
    ]
    assert spec.relations == ((0, "left of", 1), (2, "above", 0))
    assert spec.background == "gray" and spec.hard
    assert parse_prompt("A Small Yellow Diamond").objects[0].size == "small"
    assert parse_prompt("a photo of an astronaut riding a horse") is None
    assert check(example(0, 0)[0], "a photo of an astronaut") is None


def test_accepts_renders_of_their_own_captions_and_rejects_other_captions():
    n = 300
    examples = [example(7, i) for i in range(n)]
    own = [check(img, text).ok for img, text, _ in examples]
    other = [check(img, examples[(i + 1) % n][1]).ok for i, (img, _, _) in enumerate(examples)]
    # the only misses are objects in touching grid cells merging into one region
    assert np.mean(own) >= 0.98
    assert np.mean(other) <= 0.03


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "diamond"])
@pytest.mark.parametrize("size", ["small", "large"])
def test_every_shape_and_size_is_recognised(shape, size):
    for colour, bg in (("red", "black"), ("yellow", "white"), ("purple", "gray")):
        img = render(Scene((Obj(shape, colour, size, 0.52, 0.47),), bg))
        result = check(img, f"a {size} {colour} {shape} on a {bg} background")
        assert result.ok, result.clauses
        others = [s for s in ("circle", "square", "triangle", "diamond") if s != shape]
        assert not any(check(img, f"a {colour} {s}").ok for s in others)


def test_relation_and_background_clauses_fail_when_the_image_disagrees():
    scene = Scene(
        (Obj("circle", "red", "small", 0.2, 0.5), Obj("square", "blue", "small", 0.8, 0.5)),
        "white",
    )
    img = render(scene)
    assert check(img, "a red circle left of a blue square on a white background").ok
    wrong = check(img, "a red circle right of a blue square on a black background")
    assert dict(wrong.clauses) == {
        "red circle": True,
        "blue square": True,
        "circle right of square": False,
        "black background": False,
    }
    assert wrong.score == pytest.approx(0.5)


def test_noise_and_blank_images_do_not_pass():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    blank = Image.new("RGB", (32, 32), (128, 128, 128))
    for img in (noise, blank):
        assert not check(img, "a red circle").ok
    assert analyse(blank).regions == () and analyse(blank).background == "gray"


def test_world_features_separate_renders_from_noise():
    from hadis.demo.evaluate import fid

    renders = [example(1, i)[0] for i in range(120)]
    more = [example(2, i)[0] for i in range(120)]
    rng = np.random.default_rng(0)
    blurred = [im.resize((8, 8)).resize((32, 32), Image.Resampling.BILINEAR) for im in more]
    noisy = [
        Image.fromarray(
            np.clip(np.asarray(im, dtype=float) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(
                np.uint8
            )
        )
        for im in more
    ]
    assert world_features(renders[0]).shape == (DIMS,)
    same = fid(more, renders)
    assert same < fid(blurred, renders) and same < fid(noisy, renders)
