"""Does an image show what its prompt asks for? A checker for the demo world.

The prompt is parsed into clauses (each named object's colour and shape, its size when
given, every spatial relation, the background when given). The image is segmented by
nearest palette colour; each connected region of an object colour is classified by the
best intersection-over-union with the four shapes rendered at the region's box. A clause
holds when a region of the asked colour has the asked shape (size: the region's span;
relation: the two regions' centres; background: the border's majority colour).

Deterministic and exact on clean renders (tested on the held-out split), lenient to the
blur and colour drift of generated images through the palette distance threshold.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from hadis.demo.world import (
    BACKGROUNDS,
    COLOURS,
    RELATIONS,
    SHAPES,
    SIZES,
    SUPERSAMPLE,
    draw_shape,
)

PALETTE_NAMES = (*COLOURS, *(f"bg:{b}" for b in BACKGROUNDS))
PALETTE = np.array([*COLOURS.values(), *BACKGROUNDS.values()], dtype=np.float32)
MAX_COLOUR_DISTANCE = 90.0  # RGB distance beyond which a pixel is no palette colour
MIN_REGION_PX = 6  # smaller regions are noise (a small object covers ~45 px at 32x32)
MIN_SHAPE_IOU = 0.45
LARGE_SPAN = (SIZES["small"] + SIZES["large"]) / 2  # span fraction between the two sizes

_OBJ = re.compile(
    rf"(?:\b(?P<size>{'|'.join(SIZES)})\s+)?\b(?P<colour>{'|'.join(COLOURS)})\s+"
    rf"(?P<shape>{'|'.join(SHAPES)})s?\b"
)
_REL = re.compile(rf"\b({'|'.join(RELATIONS)})\b")
_BG = re.compile(rf"\b({'|'.join(BACKGROUNDS)})\s+background\b")
_THE = re.compile(rf"^\s*the\s+({'|'.join(SHAPES)})\b")


@dataclass(frozen=True, slots=True)
class Wanted:
    colour: str
    shape: str
    size: str | None = None


@dataclass(frozen=True, slots=True)
class PromptSpec:
    objects: tuple[Wanted, ...]
    relations: tuple[tuple[int, str, int], ...]  # (object i, relation, object j)
    background: str | None

    @property
    def hard(self) -> bool:
        return len(self.objects) > 1


def parse_prompt(prompt: str) -> PromptSpec | None:
    """The world clauses a prompt asks for; None when it names no world object."""
    text = prompt.lower()
    matches = list(_OBJ.finditer(text))
    if not matches:
        return None
    objects = tuple(Wanted(m["colour"], m["shape"], m["size"]) for m in matches)
    relations = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        rel = _REL.search(text, m.end(), end)
        if rel is None:
            continue
        if i + 1 < len(matches):
            relations.append((i, rel[1], i + 1))
            continue
        the = _THE.match(text[rel.end() :])  # "... and a c below the circle"
        if the:
            j = next((k for k, o in enumerate(objects[:i]) if o.shape == the[1]), None)
            if j is not None:
                relations.append((i, rel[1], j))
    bg = _BG.search(text)
    return PromptSpec(objects, tuple(relations), bg[1] if bg else None)


@dataclass(frozen=True, slots=True)
class Region:
    colour: str
    shape: str
    iou: float
    x: float  # centre, fraction of the width
    y: float
    span: float  # larger side of the box, fraction of the image side
    area: int


@dataclass(frozen=True, slots=True)
class Analysis:
    regions: tuple[Region, ...]
    background: str | None


_AREA = {"circle": np.pi, "square": 4.0, "triangle": 2.0, "diamond": 2.0}  # area / r^2


def shape_coverage(shape: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    """Fraction of each pixel covered by `shape` (centre cx, cy and radius r in pixels),
    drawn as the world's renderer draws it."""
    s = SUPERSAMPLE
    img = Image.new("L", (size * s, size * s), 0)
    draw_shape(ImageDraw.Draw(img), shape, cx * s, cy * s, r * s, 255)
    small = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def palette_labels(image: Image.Image) -> np.ndarray:
    """Per pixel: index into the palette (objects, then backgrounds), -1 for none."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    dist = np.linalg.norm(arr[:, :, None, :] - PALETTE[None, None], axis=-1)
    labels = dist.argmin(axis=-1)
    labels[dist.min(axis=-1) > MAX_COLOUR_DISTANCE] = -1
    return labels


def _fit_shape(alpha: np.ndarray) -> tuple[str, float, float]:
    """Best shape for a soft mask: (shape, soft IoU, radius in pixels). Each shape is placed
    at the mask's centroid with the radius that gives the mask's area."""
    h, w = alpha.shape
    mass = float(alpha.sum())
    ys, xs = np.mgrid[0:h, 0:w]
    mx = float((alpha * (xs + 0.5)).sum() / mass)
    my = float((alpha * (ys + 0.5)).sum() / mass)
    best = ("circle", -1.0, 0.0)
    for shape, k in _AREA.items():
        r = float(np.sqrt(mass / k))
        cy = my - r / 3 if shape == "triangle" else my  # a triangle's centroid is low
        t = shape_coverage(shape, mx, cy, r, h)
        iou = float(np.minimum(t, alpha).sum() / np.maximum(t, alpha).sum())
        if iou > best[1]:
            best = (shape, iou, r)
    return best


def analyse(image: Image.Image, labels: np.ndarray | None = None) -> Analysis:
    """Regions and background of an image (`labels`: its palette_labels, if known)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels = palette_labels(image) if labels is None else labels
    h, w = labels.shape
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = border[border >= len(COLOURS)]
    background = PALETTE_NAMES[int(np.bincount(border).argmax())][3:] if len(border) else None
    edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    bg_rgb = np.median(edge, axis=0)
    regions = []
    for ci, colour in enumerate(COLOURS):
        comp, _ = ndimage.label(labels == ci)
        for k in range(1, int(comp.max()) + 1):
            region = comp == k
            area = int(region.sum())
            if area < MIN_REGION_PX:
                continue
            # soft coverage: where each pixel lies between the background and the colour
            c = PALETTE[ci]
            line = c - bg_rgb
            alpha = ((arr - bg_rgb) @ line) / max(float(line @ line), 1.0)
            alpha = np.clip(alpha, 0, 1) * ndimage.binary_dilation(region)
            shape, iou, r = _fit_shape(alpha)
            ys, xs = np.nonzero(region)
            regions.append(
                Region(
                    colour,
                    shape,
                    iou,
                    float((xs.mean() + 0.5) / w),
                    float((ys.mean() + 0.5) / h),
                    2 * r / w,
                    area,
                )
            )
    return Analysis(tuple(regions), background)


def _holds(a: Region, rel: str, b: Region) -> bool:
    if rel == "left of":
        return a.x < b.x
    if rel == "right of":
        return a.x > b.x
    if rel == "above":
        return a.y < b.y
    return a.y > b.y


@dataclass
class Adherence:
    clauses: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(ok for _, ok in self.clauses) / len(self.clauses) if self.clauses else 0.0

    @property
    def ok(self) -> bool:
        return bool(self.clauses) and all(ok for _, ok in self.clauses)


def _clauses(spec: PromptSpec, found: tuple[Region | None, ...]) -> list[tuple[str, bool]]:
    out = []
    for o, r in zip(spec.objects, found, strict=True):
        out.append((f"{o.colour} {o.shape}", r is not None))
        if o.size is not None:
            large = r is not None and r.span >= LARGE_SPAN
            out.append((f"{o.size} {o.shape}", r is not None and large == (o.size == "large")))
    for i, rel, j in spec.relations:
        a, b = found[i], found[j]
        ok = a is not None and b is not None and _holds(a, rel, b)
        out.append((f"{spec.objects[i].shape} {rel} {spec.objects[j].shape}", ok))
    return out


def check_spec(analysis: Analysis, spec: PromptSpec) -> Adherence:
    """Clauses under the assignment of asked objects to distinct regions that satisfies
    the most (prompts may ask for two objects of the same colour and shape)."""
    options = [
        [
            r
            for r in analysis.regions
            if r.colour == o.colour and r.shape == o.shape and r.iou >= MIN_SHAPE_IOU
        ]
        + [None]
        for o in spec.objects
    ]
    best: list[tuple[str, bool]] = []
    for found in itertools.product(*options):
        taken = [id(r) for r in found if r is not None]
        if len(taken) != len(set(taken)):
            continue
        clauses = _clauses(spec, found)
        if not best or sum(ok for _, ok in clauses) > sum(ok for _, ok in best):
            best = clauses
    if spec.background is not None:
        best.append((f"{spec.background} background", analysis.background == spec.background))
    return Adherence(best)


def check(image: Image.Image, prompt: str) -> Adherence | None:
    """How well `image` follows `prompt`; None when the prompt names no world object."""
    spec = parse_prompt(prompt)
    if spec is None:
        return None
    return check_spec(analyse(image), spec)
