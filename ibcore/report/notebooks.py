"""Notebook sources: ``nbs/<stem>.py`` (jupytext percent format) and its paired ``.ipynb``.

The text file is the source that is reviewed and linted; the paired notebook is what papermill
and nbval execute. :func:`paired_notebook` refreshes the notebook from its text source whenever
their cells differ, so an edit of the ``.py`` file always reaches the book.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

#: The kernel papermill and nbval run a notebook with when its text source names none.
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def in_sync(source: Path, notebook: Path) -> bool:
    """Whether ``notebook`` holds the same cells (type, source, tags) as the text ``source``."""
    if not notebook.is_file():
        return False
    return _cells(jupytext.read(source)) == _cells(nbformat.read(notebook, as_version=4))


def paired_notebook(nbs_dir: Path, stem: str) -> Path:
    """``nbs_dir/<stem>.ipynb``, first rewritten from ``nbs_dir/<stem>.py`` where that text
    source exists and the two differ. A stem with no text source is returned as it is."""
    source, notebook = nbs_dir / f"{stem}.py", nbs_dir / f"{stem}.ipynb"
    if source.is_file() and not in_sync(source, notebook):
        nb = jupytext.read(source)
        nb.metadata.pop("jupytext", None)
        nb.metadata.setdefault("kernelspec", KERNELSPEC)
        for k, cell in enumerate(nb.cells):  # stable ids: refreshing gives no spurious diff
            cell["id"] = f"cell-{k}"
        jupytext.write(nb, notebook)
    return notebook


#: Names IPython itself defines in a notebook's namespace.
IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})
#: Parameters the pipeline may pass to any notebook, declared or not.
ALWAYS_ACCEPTED = frozenset({"profile", "results_dir", "device", "data_dir"})


def check_parameters(namespace: dict, stem: str, nbs_dir: Path | None = None) -> None:
    """Raise ValueError when a notebook's namespace, just after papermill injected its
    parameters, holds a name that the notebook's ``parameters`` cell does not declare (a typo such
    as ``stpes`` would otherwise only warn and run with the default). Call it first thing in the
    cell after the parameters cell: ``check_parameters(globals(), "<stem>")``."""
    import types

    from ibcore.core.profiles import notebook_defaults, notebook_source
    from ibcore.core.results import project_path

    known = set(notebook_defaults(notebook_source(Path(nbs_dir or project_path("nbs")), stem)))
    unknown = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in IPYTHON_NAMES | ALWAYS_ACCEPTED | known
        and not isinstance(value, types.ModuleType | types.FunctionType)
    )
    if unknown:
        raise ValueError(
            f"notebook {stem!r} has no parameter(s) {', '.join(unknown)}; its parameters are: "
            f"{', '.join(sorted(known))}"
        )
