"""ibcore.orchestration.prefetch: the parallel training phase asks for exactly the runs the
notebooks ask for."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import yaml

from ibcore.core import profiles
from ibcore.orchestration import compute, pipeline, prefetch
from ibcore.orchestration import jobs as jobs_

REPO = Path(__file__).resolve().parent.parent
STEMS = ["fig1_estimators", "table1", "fig3_tsne"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """A project root holding the real notebooks and the tiny profile, with results in it."""
    root = tmp_path_factory.mktemp("root")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    shutil.copytree(REPO / "nbs", root / "nbs", ignore=shutil.ignore_patterns("executed", "*.failed.*"))
    tiny = yaml.safe_load((REPO / "profiles" / "tiny.yml").read_text())
    profile = {stem: {**tiny[stem], "results_dir": str(root / "results")} for stem in STEMS}
    (root / "profiles").mkdir()
    (root / "profiles" / "tiny.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return root


def _records(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "results").rglob("*.json")}


def test_prefetched_runs_are_exactly_what_the_notebooks_need(tiny_root, monkeypatch):
    """After the parallel phase, executing the notebooks adds no record (they only read back),
    and a second listing finds nothing left to do."""
    monkeypatch.chdir(tiny_root)
    jobs = jobs_.profile_jobs("tiny", root=tiny_root)
    assert {j.stem for j in jobs} == set(STEMS)
    assert len({(j.kind, j.key) for j in jobs}) == len(jobs)
    assert [j.cost for j in jobs] == sorted((j.cost for j in jobs), reverse=True)
    summary = compute.run_jobs(jobs, workers=2, log=lambda _: None)
    assert summary["runs"] == len(jobs) and not summary["failed"]
    stored = _records(tiny_root)
    assert len(stored) == len(jobs)
    assert list((tiny_root / "results").rglob("*.model.pt")), "Figure 3 runs keep their weights"
    assert jobs_.profile_jobs("tiny", root=tiny_root) == []
    profile = pipeline.load_profile("tiny", tiny_root / "profiles")
    for stem in STEMS:
        params = pipeline.notebook_parameters("tiny", profile[stem])
        papermill.execute_notebook(
            str(tiny_root / "nbs" / f"{stem}.ipynb"),
            str(tiny_root / f"{stem}.out.ipynb"),
            parameters=params,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(tiny_root),
        )
    summaries = ("fig3_tsne.json", ".tsne.json", "figure1_reference.json")  # summaries, t-SNE caches
    new = {r for r in _records(tiny_root) - stored if not r.endswith(summaries)}
    assert new == set(), f"the notebooks trained runs the parallel phase missed: {sorted(new)}"


def test_a_failing_run_is_reported_and_the_others_are_stored(tmp_path):
    good = jobs_.stem_jobs(
        "table1",
        {
            "results_dir": str(tmp_path),
            "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 3, "ce_steps": 3}],
            "rows": ["ce"],
            "seeds": [0],
            "probe_steps": 2,
            "checkpoints": 1,
            "checkpoint_probe_steps": 0,
        },
    )
    bad = jobs_.Job("table1", "table1", str(tmp_path), {**good[0].config, "lr": -1.0}, "bad")
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 runs failed.*lr must be > 0"):
        compute.run_jobs([bad, *good], workers=2, log=lambda _: None)
    assert len(list(tmp_path.rglob("*.json"))) == 1


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        compute.run_jobs([], workers=0)


def test_cli_refuses_zero_workers(capsys):
    assert pipeline.main(["--profile", "tiny", "--workers", "0", "--no-book"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_every_run_a_notebook_reads_is_listed_whatever_run_missing_says(tmp_path):
    """The pipeline computes every run first: ``run_missing`` (a notebook's own switch) does not
    hide a notebook's runs; the information plane without measurements reads only."""
    params = {**_tiny("table1"), "results_dir": str(tmp_path)}
    listed = jobs_.stem_jobs("table1", {**params, "run_missing": False})
    assert listed and listed == jobs_.stem_jobs("table1", {**params, "run_missing": True})
    assert jobs_.stem_jobs("info_plane", {"results_dir": str(tmp_path), "measure_steps": 0}) == []


def _tiny(stem: str) -> dict:
    return yaml.safe_load((REPO / "profiles" / "tiny.yml").read_text())[stem]


def test_parameter_defaults_are_read_from_the_text_sources_as_papermill_reads_them():
    """``notebook_defaults`` (ast on the ``parameters`` cell of nbs/<stem>.py) gives what
    papermill reads from the paired notebook, for every notebook."""
    for source in sorted(p for p in (REPO / "nbs").glob("*.py") if p.name != "conftest.py"):
        seen = papermill.inspect_notebook(str(source.with_suffix(".ipynb")))
        expected = {name: ast.literal_eval(spec["default"]) for name, spec in seen.items()}
        assert profiles.notebook_defaults(source) == expected, source.name
        assert profiles.notebook_defaults(source.with_suffix(".ipynb")) == expected, source.name


def test_a_parameter_that_is_no_literal_is_named(tmp_path):
    source = tmp_path / "a.py"
    source.write_text(
        '# %%\nimport os\n\n# %% tags=["parameters"]\nsteps = 3\nseeds = list(range(2))\n\n# %%\nx = 1\n'
    )
    with pytest.raises(ValueError, match=r"parameter seeds = list\(range\(2\)\) is not a literal"):
        profiles.notebook_defaults(source)
    source.write_text('# %% tags=["parameters"]\nsteps = -3  # a comment\nname: str = "x"\n\n# %%\ny = 2\n')
    assert profiles.notebook_defaults(source) == {"steps": -3, "name": "x"}


def test_listing_the_runs_does_not_import_papermill():
    code = (
        "import sys; from ibcore.orchestration import compute, prefetch; "
        "from ibcore.orchestration.jobs import profile_jobs; js = profile_jobs('tiny'); "
        "assert 'papermill' not in sys.modules, sorted(sys.modules); print(len(js))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_scheduler_flag_sends_the_training_to_that_cluster(monkeypatch, capsys):
    """``--scheduler`` (pipeline and prefetch) reaches run_profile, even with one worker."""
    calls: list = []

    def fake(profile, workers, **kw):
        calls.append((workers, kw["scheduler"]))
        raise RuntimeError("stop here")

    monkeypatch.setattr(compute, "run_profile", fake)
    monkeypatch.setattr(jobs_, "profile_jobs", lambda *a, **k: [])
    monkeypatch.setattr(pipeline, "preflight", lambda *a, **k: {})
    argv = ["--profile", "tiny", "--scheduler", "tcp://h:8786"]
    assert pipeline.main([*argv, "--no-book"]) == 1
    assert prefetch.main(argv) == 1
    assert calls == [(1, "tcp://h:8786"), (os.cpu_count() or 1, "tcp://h:8786")]
    assert "stop here" in capsys.readouterr().err


def _table1_namespace(results_dir: Path, run_missing: bool) -> dict:
    """What the table1 notebook's globals() hold after its parameters cell: two tiny runs."""
    return {
        "profile": "tiny",
        "results_dir": str(results_dir),
        "device": "cpu",
        "data_dir": None,
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 3, "ce_steps": 3}],
        "rows": ["ce"],
        "seeds": [0, 1],
        "batch_size": 32,
        "probe_steps": 2,
        "checkpoints": 1,
        "checkpoint_probe_steps": 0,
        "variants": [],
        "run_missing": run_missing,
        "records": "not a parameter: ignored",
    }


def test_a_notebook_alone_with_missing_records_names_the_command(tmp_path):
    with pytest.raises(compute.MissingRecords) as info:
        compute.ensure_records("table1", _table1_namespace(tmp_path, False), nbs_dir=REPO / "nbs")
    message = str(info.value)
    assert "\n" not in message and "2 of the runs it reads have no record" in message
    assert "`python3 -m ibcore.prefetch --profile tiny --only table1`" in message
    assert "run_missing=True" in message
    assert not list(tmp_path.rglob("*.json")), "nothing was trained"


def test_run_missing_computes_through_the_pipelines_call_then_only_reads(tmp_path, monkeypatch):
    """``run_missing=True``: the notebook's runs are computed through compute_runs (the call
    behind the pipeline and prefetch), under their locks; afterwards the records are read back."""
    calls: list[list[str]] = []
    original = compute.compute_runs

    def spy(params_by_stem, *args, **kw):
        calls.append(list(params_by_stem))
        return original(params_by_stem, *args, **kw)

    monkeypatch.setattr(compute, "compute_runs", spy)
    records = compute.ensure_records(
        "table1", _table1_namespace(tmp_path, True), nbs_dir=REPO / "nbs", log=lambda _: None
    )
    assert calls == [["table1"]] and [r["config"]["seed"] for r in records] == [0, 1]
    assert len(list(tmp_path.rglob("*.json"))) == 2 and not list(tmp_path.rglob("*.lock"))
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    again = compute.ensure_records("table1", _table1_namespace(tmp_path, False), nbs_dir=REPO / "nbs")
    assert calls == [["table1"]] and again == records
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")} == stamps


def test_the_notebooks_read_by_default_and_ask_ensure_records(tmp_path):
    """Every notebook with training runs declares ``run_missing = False`` and calls
    ``ensure_records("<stem>", globals())`` instead of training itself."""
    for stem in jobs_.TRAINING_STEMS:
        source = (REPO / "nbs" / f"{stem}.py").read_text()
        assert profiles.notebook_defaults(REPO / "nbs" / f"{stem}.py")["run_missing"] is False, stem
        assert f'ensure_records("{stem}", globals()' in source, stem  # kind= may follow
        assert "run_configs(" not in source and "run_figure1(" not in source, stem


def test_the_held_out_information_plane_runs_are_listed_under_their_own_kind():
    """The info_plane notebook's ``heldout`` runs (issue 10 item 3) are computed by the pipeline
    like every other run, and stored under kind "info_plane", not beside the Table 1 runs."""
    from ibcore.experiments import heldout_plane
    from ibcore.orchestration.jobs import stem_jobs

    heldout = yaml.safe_load((REPO / "profiles" / "paper.yml").read_text())["info_plane"]["heldout"]
    jobs = stem_jobs("info_plane", {"results_dir": "results/x", "heldout": heldout, "measure_steps": 0})
    expected = heldout_plane.heldout_configs(heldout)
    assert len(jobs) == len(expected) > 0
    assert {j.kind for j in jobs} == {heldout_plane.KIND}
    assert stem_jobs("info_plane", {"results_dir": "results/x", "measure_steps": 0}) == []


def test_a_notebook_reads_each_run_under_its_own_kind():
    """The paper profile's info_plane notebook reads its cross-entropy runs (kind table1) and its
    held-out runs (kind info_plane); ``kind`` keeps one of them, and none is read under the other's."""
    params = jobs_.stem_params("paper", only=["info_plane"], root=REPO)["info_plane"]
    everything = compute.ensure_records("info_plane", params, nbs_dir=REPO / "nbs")
    ce = compute.ensure_records("info_plane", params, kind="table1", nbs_dir=REPO / "nbs")
    kinds = {r["kind"] for r in everything}
    assert kinds == {"table1", "info_plane"}
    assert ce and {r["kind"] for r in ce} == {"table1"}
    assert len(ce) == len([j for j in jobs_.stem_jobs("info_plane", params) if j.kind == "table1"])
