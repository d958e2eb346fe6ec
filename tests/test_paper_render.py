"""The paper profile renders from the stored records: every notebook executes against
results/paper without training anything, and the book builds with warnings as errors.

The tiny profile alone once let a broken paper build land (a figure's local variable shadowed a
dict that only the paper profile's records exercise); this test renders the real thing.
"""

from __future__ import annotations

from pathlib import Path

#: Files a render may (re)write under results/paper: summaries and figures, never run records.
RENDER_OUTPUTS = {"pipeline_timings.json", "fig3_tsne.json"}


def stored_files(results: Path) -> dict[str, int]:
    """Run records, model files and cached embeddings under ``results``, with their sizes."""
    return {
        str(p.relative_to(results)): p.stat().st_size
        for p in results.rglob("*")
        if p.is_file() and p.suffix in (".json", ".pt") and p.name not in RENDER_OUTPUTS
    }


def test_paper_profile_renders_from_stored_records_and_the_book_builds(paper_build: dict):
    root, proc, before = paper_build["root"], paper_build["proc"], paper_build["before"]
    assert len(before) > 150, "the stored paper-profile records are missing"
    assert proc.returncode == 0, f"paper build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    after = stored_files(root / "results" / "paper")
    assert after == before, f"the render trained or changed runs: {sorted(set(after) ^ set(before))[:10]}"
    html = root / "_build" / "html" / "book" / "generated"
    for stem in (
        "fig1_estimators",
        "table1",
        "compression",
        "beta_sweep",
        "info_plane",
        "fig3_tsne",
        "claims",
        "truth",
    ):
        page = html / f"{stem}.html"
        assert page.is_file(), f"{page} was not built"
        assert "Traceback" not in page.read_text(), f"{page} shows a traceback"
