"""The layers of docs/architecture.md, enforced: import-linter contracts (pyproject.toml) that match
the table in the docs, and no import circles anywhere in the package (lazy imports included)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _documented_layers() -> list[set[str]]:
    """The first column of the Layers table, top to bottom: `cli/` -> runai_lite.cli, `model.py` ->
    runai_lite.model; several names in one row are one layer of siblings."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [{"runai_lite." + name.removesuffix("/").removesuffix(".py").replace("/", ".")
             for name in re.findall(r"`([^`]+)`", row.split("|")[1])} for row in rows]


def test_the_layers_contract_is_the_table_in_the_docs() -> None:
    (layers,) = [c["layers"] for c in _contracts()["contracts"] if c["type"] == "layers"]
    assert [set(layer.split(" | ")) for layer in layers] == _documented_layers()


def test_every_contract_holds() -> None:
    """`lint-imports` over the package as it is in this tree (lazy imports count too)."""
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_no_import_circles() -> None:
    graph = grimp.build_graph("runai_lite")
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    circles = _circles(modules, edges)
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def _circles(modules: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(modules)))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found
