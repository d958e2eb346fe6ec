"""nbval (``pytest nbs --nbval-lax``): compute a notebook's records before its cells run.

The notebooks only read records (their ``run_missing`` parameter is False by default). Before
the first cell of ``nbs/<stem>.ipynb`` runs, the runs it reads with the ``tiny`` profile (which
holds the notebooks' own defaults) are computed through the call the pipeline and the notebooks
use, :func:`ibcore.orchestration.compute.ensure_records`, so that ``make test`` passes from a
fresh clone. Stored runs are read back, not retrained.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "tiny"
_done: set[str] = set()


def _ensure(stem: str) -> None:
    from ibcore.orchestration.compute import ensure_records
    from ibcore.orchestration.jobs import stem_params

    before = Path.cwd()
    os.chdir(ROOT)  # relative results folders are taken from the project root
    try:
        params = stem_params(PROFILE, root=ROOT).get(stem)
        if params is not None:
            ensure_records(stem, params, run_missing=True, nbs_dir=ROOT / "nbs", log=lambda _: None)
    finally:
        os.chdir(before)


def pytest_runtest_setup(item: pytest.Item) -> None:
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb" and path.stem not in _done:
        _done.add(path.stem)
        _ensure(path.stem)
