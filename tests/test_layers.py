"""The package's layers (issue 12): core < experiments < report < orchestration < the commands.

Read from the source with :mod:`ast` (nothing is imported), every ``import`` statement counts,
those inside functions and ``if TYPE_CHECKING`` blocks included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ibcore"

#: Rank of each layer; a module may import its own layer and those below it.
LAYERS = {"core": 0, "experiments": 1, "report": 2, "orchestration": 3}
#: Modules on top of every layer: the benchmark (a package: its modules too) and the two launchers.
TOP = {"ibcore.bench", "ibcore.pipeline", "ibcore.prefetch"}
TOP_RANK = 4
MAX_LINES = 400
#: Modules allowed over MAX_LINES lines, each with its reason.
LONG_MODULES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    """The layer of an ``ibcore`` module (the package itself re-exports the core)."""
    if module in TOP or module.rpartition(".")[0] in TOP:
        return TOP_RANK
    parts = module.split(".")
    if len(parts) == 1:
        return LAYERS["core"]
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module} belongs to no layer: put it in one of {sorted(LAYERS)} or in TOP")
    return LAYERS[parts[1]]


def imports(module: str) -> list[tuple[str, int]]:
    """The ``ibcore`` modules ``module`` imports, anywhere in its source, with the line."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "ibcore"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            if base.split(".")[0] != "ibcore":
                continue
            for alias in node.names:  # `from ibcore.report import pages` imports a module
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return [(m, line) for m, line in found if m in MODULES and m != module]


def test_the_scan_finds_the_layers_and_their_imports():
    """The scan itself: it sees a module-level and a function-level import, and the launchers."""
    assert rank("ibcore.core.results") == 0 and rank("ibcore.orchestration.pipeline") == 3
    assert rank("ibcore.bench") == rank("ibcore.bench.steps") == TOP_RANK  # the benchmark package
    assert ("ibcore.orchestration.pipeline", 3) in [(m, rank(m)) for m, _ in imports("ibcore.pipeline")]
    inside = {m for m, _ in imports("ibcore.orchestration.pipeline")}
    assert {"ibcore.core.profiles", "ibcore.orchestration.compute"} <= inside  # the second: in a function
    assert "ibcore.core.formatting" in {m for m, _ in imports("ibcore.report.pages")}


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {target}"
        for m in MODULES
        for target, line in imports(m)
        if rank(target) > rank(m)
    ]
    assert not upward, "imports from a higher layer:\n  " + "\n  ".join(upward)


def test_no_import_cycle():
    graph = {m: sorted({t for t, _ in imports(m)}) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycles.append(" -> ".join([*path[path.index(t) :], t]))
            elif t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


@pytest.mark.parametrize("path", sorted(MODULES.values()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_400_lines_without_a_reason(path: Path):
    rel = str(path.relative_to(PACKAGE.parent))
    n = len(path.read_text(encoding="utf8").splitlines())
    if rel in LONG_MODULES:
        assert LONG_MODULES[rel].strip(), f"{rel}: the allow-list entry needs its reason"
        return
    assert n <= MAX_LINES, f"{rel} has {n} lines (> {MAX_LINES}): split it along a seam, or give the reason"


def test_the_allow_list_names_existing_long_modules_only():
    """An entry whose module was split (or removed) goes, so the list only shrinks."""
    stale = [
        rel
        for rel in LONG_MODULES
        if not (PACKAGE.parent / rel).is_file()
        or len((PACKAGE.parent / rel).read_text(encoding="utf8").splitlines()) <= MAX_LINES
    ]
    assert not stale, f"remove from LONG_MODULES (no longer over {MAX_LINES} lines): {stale}"
