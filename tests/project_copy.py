"""A copy of the project (sources and stored records) in a temporary folder, and a pipeline run
in it: shared by the paper-render and browser tests, so the paper book is built once a session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ibcore.core.data import DATA_ENV, find_file

REPO = Path(__file__).resolve().parents[1]


def copy_project(root: Path) -> Path:
    """Copy the repository's tracked and untracked-not-ignored sources (not results/, tests/)
    and the stored records of results/paper and results/bench to ``root``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file() and not rel.startswith(("results/", "tests/")):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    for sub in ("paper", "bench"):
        shutil.copytree(REPO / "results" / sub, root / "results" / sub)
    return root


def run_pipeline(profile: str, root: Path, workers: int = 1) -> subprocess.CompletedProcess:
    """``python -m ibcore.pipeline --profile <profile> --workers <workers>`` in the copy at
    ``root`` (its own ibcore, the data found beside the repository)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "OMP_NUM_THREADS": "1",
        DATA_ENV: str(find_file("mnist").parent),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ibcore.pipeline",
            "--profile",
            profile,
            "--workers",
            str(workers),
            "--no-progress",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
