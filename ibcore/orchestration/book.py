"""Build the Jupyter Book: ``jupyter-book build . -W -n --keep-going``, after checking that every
page of ``_toc.yml`` exists."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ibcore.core.profiles import REPO_ROOT
from ibcore.orchestration.errors import PipelineError

BOOK_COMMAND = ("build", ".", "-W", "-n", "--keep-going")


def toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Every ``root:``/``file:`` entry of ``_toc.yml`` (paths without suffix), in order."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf8")) or {}
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def missing_toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Entries of ``_toc.yml`` with no ``.md``/``.ipynb`` file (e.g. a page not generated yet)."""
    root = Path(root)
    return [
        f
        for f in toc_files(root)
        if not any((root / f"{Path(f).with_suffix('')}{ext}").is_file() for ext in (".md", ".ipynb"))
        and not (root / f).is_file()
    ]


def build_book(root: Path = REPO_ROOT, log: Callable[[str], None] = print) -> float:
    """``jupyter-book build . -W -n --keep-going`` in ``root``; returns the wall time."""
    missing = missing_toc_files(root)
    if missing:
        hints = [
            f"{m} (run the notebook nbs/{Path(m).name}.ipynb through the pipeline first)"
            if Path(m).parent.as_posix() == "book/generated"
            else m
            for m in missing
        ]
        raise PipelineError("_toc.yml lists pages that do not exist:\n  " + "\n  ".join(hints))
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]
    cmd += list(BOOK_COMMAND)
    log(f"[pipeline] building the book: jupyter-book {' '.join(BOOK_COMMAND)} (in {root})")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise PipelineError(
            f"the book build failed (exit code {proc.returncode}); warnings count as errors (-W -n), "
            "see the messages above"
        )
    log(f"[pipeline] book built in {seconds:.1f} s: {root / '_build' / 'html' / 'index.html'}")
    return seconds
