"""The package's layers (docs/architecture.md): a module imports only from layers below its
own, or from its own package. Checked on the source text, lazy imports included."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hadis

ROOT = Path(hadis.__file__).parent

# Rank of each top-level module or package of hadis; higher ranks may import lower ones.
# Packages of one rank (the drivers: profiling, sim, serve) may not import each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "textfiles": 1,
    "registry": 1,
    "documents": 2,
    "bundled": 2,
    "web": 2,
    "fid": 2,
    "profiles": 3,
    "demo": 3,  # the bundled demo pool's models, world and checker
    "core": 4,
    "planner": 5,
    "routing": 6,
    "engine": 7,
    "workers": 8,
    "profiling": 9,
    "sim": 9,
    "serve": 9,
    "loadgen": 10,
    "deploy": 11,
    "cli": 12,
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if node.module == "hadis":  # `from hadis import bundled` (not __version__)
                out += [(node.lineno, n) for n in names[1:] if _top(n) in LAYERS]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, name) for line, name in out if name.startswith("hadis.")]


def _top(module: str) -> str:
    return module.split(".")[1]


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()}
    tops = {t for t in tops if not t.startswith(("_", ".")) and t != "data"}
    tops.discard("py")
    assert tops <= set(LAYERS), f"give these a layer: {sorted(tops - set(LAYERS))}"


def test_no_module_imports_upward_or_sideways():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "__init__.py":
            continue
        own = rel.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            top = _top(module)
            if top == own:
                continue
            if LAYERS[top] >= LAYERS[own]:
                wrong.append(f"{rel}:{line} imports {module} ({own} {LAYERS[own]} -> {top} "
                             f"{LAYERS[top]})")  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_the_core_pulls_no_heavy_dependency():
    code = (
        "import sys, hadis.core, hadis.engine\n"
        "heavy = [m for m in ('scipy', 'fastapi', 'torch', 'uvicorn', 'ray') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the core pulled {out.stdout.strip()}"
