"""A procedural image world: small images of one to three simple objects, with captions.

Scenes are sampled with a seed and rendered deterministically (4x supersampling, then a
box-filter downscale). Captions come from varied templates that all name the background;
hard prompts name several objects and their spatial relations ("a red circle left of a
blue square on a white background"). The split is by content: scenes whose (shape,
colour) pairs include a held-out combination are the held-out set, so a model trained on
the train split never saw those combinations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 190),
    "orange": (240, 140, 30),
}
BACKGROUNDS = {"black": (10, 10, 10), "gray": (128, 128, 128), "white": (245, 245, 245)}
SIZES = {"small": 0.24, "large": 0.4}  # diameter as a fraction of the image side
HELD_OUT = frozenset({("triangle", "purple"), ("diamond", "orange"), ("circle", "yellow")})
RELATIONS = ("left of", "right of", "above", "below")


@dataclass(frozen=True, slots=True)
class Obj:
    shape: str
    colour: str
    size: str
    x: float  # centre, fraction of the width (0 left .. 1 right)
    y: float  # centre, fraction of the height (0 top .. 1 bottom)


@dataclass(frozen=True, slots=True)
class Scene:
    objects: tuple[Obj, ...]
    background: str

    @property
    def held_out(self) -> bool:
        return any((o.shape, o.colour) in HELD_OUT for o in self.objects)

    @property
    def hard(self) -> bool:
        return len(self.objects) > 1


def relation(a: Obj, b: Obj) -> str:
    """The dominant spatial relation of a to b."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def sample_scene(rng: np.random.Generator, n_objects: int | None = None) -> Scene:
    n = n_objects or int(rng.choice([1, 1, 2, 3]))
    # distinct cells of a 3x3 grid: objects never overlap; a single object is centred
    slots = [4] if n == 1 else rng.permutation(9)[:n]
    objs = []
    for s in slots:
        jitter = rng.uniform(-0.04, 0.04, size=2)
        objs.append(
            Obj(
                shape=str(rng.choice(SHAPES)),
                colour=str(rng.choice(list(COLOURS))),
                size=str(rng.choice(list(SIZES))) if n == 1 else "small",
                x=float((s % 3 + 0.5) / 3 + jitter[0]),
                y=float((s // 3 + 0.5) / 3 + jitter[1]),
            )
        )
    return Scene(tuple(objs), str(rng.choice(list(BACKGROUNDS))))


SUPERSAMPLE = 4


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    """One shape centred at (cx, cy) with radius r (pixels of the drawing)."""
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:  # diamond
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


def render(scene: Scene, size: int = 32, supersample: int = SUPERSAMPLE) -> Image.Image:
    big = size * supersample
    img = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        r = SIZES[o.size] * big / 2
        draw_shape(draw, o.shape, o.x * big, o.y * big, r, COLOURS[o.colour])
    return img.resize((size, size), Image.Resampling.BOX)


def _phrase(o: Obj, with_size: bool) -> str:
    words = f"{o.size + ' ' if with_size else ''}{o.colour} {o.shape}"
    return ("an " if words[0] in "aeiou" else "a ") + words


# Every template names the background: an attribute a caption leaves out is random in the
# renders, and a model can only learn its average there (a grey blur between black and
# white backgrounds), which every model shares whatever the prompt.
_SINGLE = (
    "{obj} on a {bg} background",
    "a picture of {obj} on a {bg} background",
    "{obj}, centered, {bg} background",
    "a simple drawing of {obj}, {bg} background",
    "{bg} background, {obj}",
)
_PAIR = (
    "{a} {rel} {b} on a {bg} background",
    "two shapes: {a} {rel} {b}, {bg} background",
    "{bg} background, {a} {rel} {b}",
)


def caption(scene: Scene, rng: np.random.Generator) -> str:
    objs = scene.objects
    bg = scene.background
    if len(objs) == 1:
        template = _SINGLE[int(rng.integers(len(_SINGLE)))]
        return template.format(obj=_phrase(objs[0], True), bg=bg)
    a, b = objs[0], objs[1]
    first = _PAIR[int(rng.integers(len(_PAIR)))].format(
        a=_phrase(a, False), rel=relation(a, b), b=_phrase(b, False), bg=bg
    )
    if len(objs) == 2:
        return first
    c = objs[2]
    return f"{first}, and {_phrase(c, False)} {relation(c, a)} the {a.shape}"


def example(seed: int, index: int, size: int = 32) -> tuple[Image.Image, str, Scene]:
    """The index-th example of a seeded stream (stable whatever else is drawn)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "big"))
    scene = sample_scene(rng)
    return render(scene, size), caption(scene, rng), scene


def split(seed: int, n: int, held_out: bool, size: int = 32) -> list[tuple[Image.Image, str]]:
    """The first n examples of the train (held_out=False) or held-out split."""
    out: list[tuple[Image.Image, str]] = []
    i = 0
    while len(out) < n:
        img, text, scene = example(seed, i, size)
        if scene.held_out == held_out:
            out.append((img, text))
        i += 1
    return out
