"""Self-contained web pages (no CDN, no build step): the live dashboard of `hadis serve`
and the report page of `hadis simulate --out`. A page is its HTML template with the shared
stylesheet, the small SVG chart library (charts.js) and its own script inlined, plus its
data as JSON, so it works offline and, for the report, as one file."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=16)
def asset(name: str) -> str:
    return (resources.files("hadis") / "web" / name).read_text(encoding="utf-8")


def jsonable(obj: Any) -> Any:
    """Plain JSON: non-finite floats become null (JSON has no NaN or infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def page(name: str, data: Any = None) -> str:
    """The page `name` (name.html + name.js) with everything inlined."""
    html = asset(f"{name}.html")
    payload = json.dumps(jsonable(data), separators=(",", ":")).replace("</", "<\\/")
    return (
        html.replace("/*STYLE*/", asset("style.css"))
        .replace("/*CHARTS*/", asset("charts.js"))
        .replace("/*SCRIPT*/", asset(f"{name}.js"))
        .replace("/*DATA*/", payload)
    )
