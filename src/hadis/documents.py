"""Reading the project's input documents (profiles, pool files) with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hadis.errors import HadisError
from hadis.textfiles import read_text


def read_document(path: str | Path, what: str, error: type[HadisError] = HadisError) -> dict:
    """A JSON object from `path` (YAML for .yaml / .yml); `what` names it in errors."""
    path = Path(path)
    text = read_text(path, what, error)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data: Any = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise error(f"{what} {path}: invalid YAML: {e}") from e
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise error(f"{what} {path}: invalid JSON at line {e.lineno}: {e.msg}") from e
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected an object, got {type(data).__name__}")
    return data


def first_error(e: ValidationError) -> str:
    """'field.path: message' of a pydantic error's first problem."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    return f"{loc}: {err['msg']}"
