"""The paper profile renders from the stored records: every notebook executes against
results/paper without training anything, and the book builds with warnings as errors.

The tiny profile alone once let a broken paper build land (a figure's local variable shadowed a
dict that only the paper profile's records exercise); this test renders the real thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ibcore.data import DATA_ENV, find_file

REPO = Path(__file__).resolve().parents[1]
#: Files a render may (re)write under results/paper: summaries and figures, never run records.
RENDER_OUTPUTS = {"pipeline_timings.json", "fig3_tsne.json"}


def _stored(results: Path) -> dict[str, int]:
    """Run records, model files and cached embeddings under ``results``, with their sizes."""
    return {
        str(p.relative_to(results)): p.stat().st_size
        for p in results.rglob("*")
        if p.is_file() and p.suffix in (".json", ".pt") and p.name not in RENDER_OUTPUTS
    }


@pytest.fixture(scope="module")
def paper_copy(tmp_path_factory) -> Path:
    """A copy of the repository's sources and of the stored paper-profile records."""
    root = tmp_path_factory.mktemp("paper")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file() and not rel.startswith(("results/", "tests/")):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    shutil.copytree(REPO / "results" / "paper", root / "results" / "paper")
    shutil.copytree(REPO / "results" / "bench", root / "results" / "bench")
    return root


def test_paper_profile_renders_from_stored_records_and_the_book_builds(paper_copy: Path):
    before = _stored(paper_copy / "results" / "paper")
    assert len(before) > 150, "the stored paper-profile records are missing"
    data_dir = find_file("mnist").parent  # Figure 3 reads test images; nothing trains
    env = {**os.environ, "PYTHONPATH": str(paper_copy), "OMP_NUM_THREADS": "1", DATA_ENV: str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "ibcore.pipeline", "--profile", "paper", "--workers", "1", "--no-progress"],
        cwd=paper_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, f"paper build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    after = _stored(paper_copy / "results" / "paper")
    assert after == before, f"the render trained or changed runs: {sorted(set(after) ^ set(before))[:10]}"
    html = paper_copy / "_build" / "html" / "book" / "generated"
    for stem in ("fig1_estimators", "table1", "beta_sweep", "info_plane", "fig3_tsne", "claims"):
        page = html / f"{stem}.html"
        assert page.is_file(), f"{page} was not built"
        assert "Traceback" not in page.read_text(), f"{page} shows a traceback"
