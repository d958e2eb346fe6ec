"""Notebook sources: each nbs/<stem>.py (jupytext percent format) and its paired .ipynb agree."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

from ibcore.report.notebooks import in_sync, paired_notebook

NBS = Path(__file__).resolve().parents[1] / "nbs"
SOURCES = sorted(p for p in NBS.glob("*.py") if p.name != "conftest.py")  # conftest: nbval setup


def test_every_notebook_has_a_text_source():
    stems_py = {p.stem for p in SOURCES}
    stems_nb = {p.stem for p in NBS.glob("*.ipynb")}
    assert stems_py and stems_nb <= stems_py, f"notebooks without a .py source: {stems_nb - stems_py}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_paired_notebook_in_sync_with_its_source(source: Path):
    notebook = source.with_suffix(".ipynb")
    assert in_sync(source, notebook), f"{notebook} differs from {source}: run `make notebooks`"
    tags = [c.metadata.get("tags", []) for c in jupytext.read(source).cells if c.cell_type == "code"]
    assert ["parameters"] in tags, f"{source} has no cell tagged 'parameters' (papermill needs one)"


def test_paired_notebook_rewrites_a_stale_copy(tmp_path: Path):
    (tmp_path / "a.py").write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\ny = x + 1\n')
    nb = paired_notebook(tmp_path, "a")
    assert [c.source for c in nbformat.read(nb, as_version=4).cells] == ["x = 1", "y = x + 1"]
    (tmp_path / "a.py").write_text('# %% tags=["parameters"]\nx = 2\n')
    assert not in_sync(tmp_path / "a.py", nb)
    paired_notebook(tmp_path, "a")
    cells = nbformat.read(nb, as_version=4).cells
    assert [c.source for c in cells] == ["x = 2"] and cells[0].metadata["tags"] == ["parameters"]


def test_a_typo_in_a_papermill_parameter_is_an_error(tmp_path: Path):
    """papermill only warns about a parameter the notebook does not declare; the notebooks'
    first cell after the parameters turns it into one error naming the typo and the known names."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    (tmp_path / "nbs").mkdir()
    nbs_dir = str(tmp_path / "nbs")
    check = (
        f"from ibcore.report.notebooks import check_parameters\ncheck_parameters(globals(), 'a', {nbs_dir!r})"
    )
    (tmp_path / "nbs" / "a.py").write_text(
        f'# %% tags=["parameters"]\nsteps = 1\n\n# %%\n{check}\ny = steps\n'
    )
    nb = paired_notebook(tmp_path / "nbs", "a")
    papermill.execute_notebook(
        str(nb), str(tmp_path / "ok.ipynb"), parameters={"steps": 2}, progress_bar=False
    )
    with pytest.raises(PapermillExecutionError, match=r"no parameter\(s\) stpes; its parameters are: steps"):
        papermill.execute_notebook(
            str(nb), str(tmp_path / "bad.ipynb"), parameters={"stpes": 2}, progress_bar=False
        )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_checks_its_parameters(source: Path):
    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    first = next(k for k, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    after = cells[first + 1].source
    assert f'check_parameters(globals(), "{source.stem}")' in after, (
        f"{source}: the cell after the parameters must call check_parameters(globals(), {source.stem!r})"
    )


def test_a_notebook_alone_without_its_records_says_which_command_computes_them(tmp_path: Path):
    """papermill on the real beta_sweep notebook with an empty results folder: it trains
    nothing and fails in one error naming the prefetch command (and the run_missing switch)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out = tmp_path / "results"
    with pytest.raises(PapermillExecutionError) as info:
        papermill.execute_notebook(
            str(NBS / "beta_sweep.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "tiny", "results_dir": str(out)},
            progress_bar=False,
            cwd=str(NBS.parent),
        )
    assert info.value.ename == "MissingRecords"
    assert "`python3 -m ibcore.prefetch --profile tiny --only beta_sweep`" in info.value.evalue
    assert "run_missing=True" in info.value.evalue
    assert not list(out.rglob("*.json")), "the notebook trained nothing"
