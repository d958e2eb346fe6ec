"""Fault injection (issue 13): bad input, corrupt state and interrupted runs give one clear
error naming the culprit; nothing stored is lost; nothing stored is executed.

One test per case of the issue. Library functions are called directly where they decide the
behaviour; the command lines are called in-process (``main``) with their output captured, to
check that one line, and no traceback, reaches the user.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml

from ibcore.core import data as data_mod
from ibcore.core import profiles, results
from ibcore.core.config import TrainConfig
from ibcore.core.data import DataError, load_arrays
from ibcore.core.results import (
    FORMAT_VERSION,
    StorageError,
    StoredStateError,
    config_id,
    load_records,
    read_record,
    record_path,
    write_record,
)
from ibcore.core.training import Checkpointer, train
from ibcore.experiments import table1
from ibcore.experiments.representation import fig3_configs
from ibcore.orchestration import compute, pipeline, prefetch
from ibcore.orchestration import jobs as jobs_
from ibcore.orchestration.pipeline import PipelineError

REPO = Path(__file__).resolve().parent.parent
TINY_T1 = {
    "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 4, "ce_steps": 8}],
    "rows": ["ce"],
    "seeds": [0],
    "sigma": 1.0,
    "batch_size": 32,
    "probe_steps": 5,
    "checkpoints": 2,
    "checkpoint_probe_steps": 2,
}


@pytest.fixture
def notes(monkeypatch) -> list[str]:
    """The one-line notes of :mod:`ibcore.core.results` (quarantine), collected."""
    lines: list[str] = []
    monkeypatch.setattr(results, "log", lines.append)
    return lines


def _config(**kw) -> dict:
    return TrainConfig(**{"fraction": 0.01, "steps": 4, "batch_size": 32, **kw}).to_dict()


def _store(folder: Path, kind: str = "table1", **kw) -> tuple[dict, Path]:
    config = _config(**kw)
    path = write_record(folder, {"kind": kind, "config": config, "metrics": {"test_accuracy": 0.5}})
    return config, path


def _quarantined(folder: Path, path: Path) -> Path:
    return folder / "quarantine" / path.relative_to(folder)


def _one_line(text: str) -> None:
    assert "Traceback" not in text
    assert len([line for line in text.splitlines() if "error" in line]) == 1, text


class Planted:
    """Unpickling this runs ``open(marker, 'w')``: code execution, if ever loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# -- 1. code execution from a results folder -----------------------------------------------


def test_planted_checkpoint_is_refused_and_runs_no_code(tmp_path, notes):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "table1" / "0123456789abcdef.ckpt.pt"
    ckpt.parent.mkdir()
    torch.save({"model": Planted(marker)}, ckpt)
    assert Checkpointer(ckpt).load() is None
    assert not marker.exists(), "the planted code ran"
    assert not ckpt.exists() and _quarantined(tmp_path, ckpt).is_file()  # moved aside, not deleted
    assert len(notes) == 1 and str(ckpt) in notes[0] and "refused" in notes[0]


def test_planted_model_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    config = TrainConfig(fraction=0.01, steps=4, batch_size=32, max_layers=1)
    path = results.model_path(tmp_path, "fig3", config.to_dict())
    path.parent.mkdir(parents=True)
    torch.save({"w": Planted(marker)}, path)
    with pytest.raises(StoredStateError, match=f"model file {path} needs more than tensors"):
        table1.load_model(config, tmp_path, kind="fig3")
    assert not marker.exists()


# -- 2. one corrupt file never blocks the profile, and is named ------------------------------


@pytest.mark.parametrize("content", ['{"kind": "table1", "conf', "", "[]", "\x00\xff"])
def test_corrupt_record_is_named_quarantined_and_redone(tmp_path, notes, content):
    good, good_path = _store(tmp_path, seed=0)
    bad, bad_path = _store(tmp_path, seed=1)
    bad_path.write_bytes(content.encode("latin-1"))
    records = load_records(tmp_path, "table1")
    assert [r["config"] for r in records] == [good]
    assert len(notes) == 1 and str(bad_path) in notes[0] and "redone" in notes[0]
    assert _quarantined(tmp_path, bad_path).read_bytes() == content.encode("latin-1")  # nothing lost
    assert read_record(tmp_path, "table1", bad) is None  # its run is to do again
    assert good_path.is_file()


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A project root with the real table1 and fig3 notebooks and a profile 't' whose records
    go to ``<root>/results``."""
    (tmp_path / "nbs").mkdir()
    for stem in ("table1", "fig3_tsne"):
        shutil.copy(REPO / "nbs" / f"{stem}.ipynb", tmp_path / "nbs")
    out = str(tmp_path / "results")
    profile = {
        "table1": {"results_dir": out, **TINY_T1},
        "fig3_tsne": {"results_dir": out, "steps": 4, "betas": [1.0], "seeds": [0], "batch_size": 32},
    }
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "t.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return tmp_path


def test_prefetch_list_names_a_corrupt_record_and_counts_its_run(tiny_root, monkeypatch, capsys):
    monkeypatch.setattr(profiles, "REPO_ROOT", tiny_root)
    jobs = jobs_.profile_jobs("t", root=tiny_root)
    t1 = next(j for j in jobs if j.kind == "table1")
    record = {"kind": "table1", "config": t1.config, "metrics": {"test_accuracy": 1}}
    path = write_record(t1.results_dir, record)
    assert len(jobs_.profile_jobs("t", root=tiny_root)) == len(jobs) - 1
    path.write_text('{"kind": "tab')  # truncated
    assert prefetch.main(["--profile", "t", "--list"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert f"{path}: not valid JSON" in out.err and f"{len(jobs)} runs to do" in out.out
    assert _quarantined(tiny_root / "results", path).read_text() == '{"kind": "tab'


def test_truncated_checkpoint_is_quarantined_and_the_run_starts_afresh(
    tmp_path, notes, tiny_config, mnist_small
):
    config = tiny_config(method="ce")
    ckpt = tmp_path / "table1" / f"{config_id(config.to_dict())}.ckpt.pt"
    ckpt.parent.mkdir()
    Checkpointer(ckpt).save({"step": 1, "model": {"w": torch.ones(3)}})
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    out = train(config, mnist_small, torch.device("cpu"), checkpoint=ckpt, progress=False)
    assert 0 <= out["metrics"]["test_accuracy"] <= 1
    assert len(notes) == 1 and str(ckpt) in notes[0] and "truncated or corrupt" in notes[0]
    assert _quarantined(tmp_path, ckpt).stat().st_size == 100
    assert torch.load(ckpt, weights_only=True)["run_id"] == ckpt.name.split(".")[0]  # a fresh one


def test_checkpoint_of_another_run_is_not_resumed(tmp_path, notes):
    ckpt = tmp_path / "table1" / "aaaaaaaaaaaaaaaa.ckpt.pt"
    Checkpointer(tmp_path / "table1" / "bbbbbbbbbbbbbbbb.ckpt.pt").save({"step": 3})
    os.replace(tmp_path / "table1" / "bbbbbbbbbbbbbbbb.ckpt.pt", ckpt)
    assert Checkpointer(ckpt).load() is None
    assert "checkpoint of run bbbbbbbbbbbbbbbb, not of aaaaaaaaaaaaaaaa" in notes[0] and str(ckpt) in notes[0]


def test_truncated_model_file_makes_its_run_to_do(tmp_path, notes):
    config, record = _store(tmp_path, kind="fig3", max_layers=1)
    weights = results.model_path(tmp_path, "fig3", config)
    results.atomic_torch_save({"w": torch.ones(4)}, weights)
    assert read_record(tmp_path, "fig3", config, require_model=True) is not None
    weights.write_bytes(weights.read_bytes()[:50])
    assert read_record(tmp_path, "fig3", config, require_model=True) is None  # prefetch: to do
    assert str(weights) in notes[0] and str(record) in notes[1]
    assert _quarantined(tmp_path, weights).is_file() and _quarantined(tmp_path, record).is_file()
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        table1.load_model(TrainConfig.from_dict(config), tmp_path, kind="fig3")


def test_old_format_record_is_upgraded_or_named(tmp_path, notes):
    config, path = _store(tmp_path, seed=0)
    old = json.loads(path.read_text())
    for key in ("format_version", "timings", "environment"):
        old.pop(key, None)
    path.write_text(json.dumps(old))
    record = read_record(tmp_path, "table1", config)
    assert record["format_version"] == FORMAT_VERSION
    assert math.isnan(record["timings"]["train_seconds"]) and record["environment"]["device"] is None
    assert path.read_text() == json.dumps(old) and not notes  # upgraded in memory, file untouched
    old["metrics"] = {"train_accuracy": 0.3}  # no test accuracy: cannot be upgraded
    path.write_text(json.dumps(old))
    assert read_record(tmp_path, "table1", config) is None
    assert str(path) in notes[0] and "lacks metrics ['test_accuracy']" in notes[0]


def test_hand_edited_config_is_caught_by_the_hash(tmp_path, notes):
    config, path = _store(tmp_path, seed=0)
    record = json.loads(path.read_text())
    record["config"]["seed"] = 7
    path.write_text(json.dumps(record))
    assert load_records(tmp_path, "table1") == []
    assert str(path) in notes[0] and "not to its file name" in notes[0]


# -- 3. parameters validated before any work -----------------------------------------------


def test_duplicate_seeds_are_refused():
    with pytest.raises(ValueError, match=r"seeds = \[0, 0\] repeats \[0\]"):
        table1.configs_from_params({**TINY_T1, "seeds": [0, 0]})
    with pytest.raises(ValueError, match="seeds"):
        fig3_configs([1.0], seeds=[3, 3])


def test_sigma_must_be_positive():
    with pytest.raises(ValueError, match=r"sigma \(noise std\) must be a finite number > 0, got 0"):
        TrainConfig(sigma=0)


def test_ce_steps_zero_is_refused_not_replaced():
    params = {**TINY_T1, "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 4, "ce_steps": 0}]}
    with pytest.raises(ValueError, match="ce_steps must be an integer >= 1"):
        table1.configs_from_params(params)


def test_batch_larger_than_training_set_needs_oversample():
    with pytest.raises(ValueError, match="batch_size=512 exceeds the 10 training images"):
        TrainConfig(fraction=0.0002, batch_size=512)
    config = TrainConfig(fraction=0.0002, batch_size=512, oversample=True)
    assert config.to_dict()["oversample"] is True
    assert "oversample" not in TrainConfig(fraction=0.01).to_dict()  # stored hashes unchanged


def _fake_root(tmp_path: Path, stems: dict[str, dict]) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "t.yml").write_text(yaml.safe_dump(stems, sort_keys=False))
    for stem in stems:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [
            nbformat.v4.new_code_cell("steps = 1\nprofile = 'none'", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(steps)"),
        ]
        (tmp_path / "nbs").mkdir(exist_ok=True)
        nbformat.write(nb, tmp_path / "nbs" / f"{stem}.ipynb")
    return tmp_path


def test_unknown_profile_parameter_lists_the_known_ones(tmp_path, capsys, monkeypatch):
    root = _fake_root(tmp_path, {"a": {"stpes": 3}})
    monkeypatch.setattr(pipeline, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    assert pipeline.main(["--profile", "t", "--no-book", "--no-progress"], root=root) == 1
    err = capsys.readouterr().err
    _one_line(err)
    assert "notebook 'a' (nbs/a.ipynb) has no parameter(s) stpes; its parameters are: profile, steps" in err


def test_bad_value_in_profile_fails_before_any_notebook(tiny_root, capsys, monkeypatch):
    profile = yaml.safe_load((tiny_root / "profiles" / "t.yml").read_text())
    profile["table1"]["seeds"] = [0, 0]
    (tiny_root / "profiles" / "t.yml").write_text(yaml.safe_dump(profile))
    monkeypatch.setattr(pipeline, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    assert pipeline.main(["--profile", "t", "--no-book", "--no-progress"], root=tiny_root) == 1
    err = capsys.readouterr().err
    _one_line(err)
    assert "notebook 'table1'" in err and "repeats [0]" in err


def _labels_npz(path: Path, y_train: np.ndarray, monkeypatch) -> None:
    spec = data_mod.SPECS["mnist"]
    monkeypatch.setitem(spec, "n_train", len(y_train))
    monkeypatch.setitem(spec, "n_test", 4)
    n = len(y_train)
    np.savez(
        path / "mnist.npz",
        x_train=np.zeros((n, 28, 28), np.uint8),
        y_train=y_train,
        x_test=np.zeros((4, 28, 28), np.uint8),
        y_test=np.arange(4),
    )


@pytest.mark.parametrize("bad", [np.nan, 2.5])
def test_nan_or_fractional_labels_are_refused(tmp_path, monkeypatch, bad):
    _labels_npz(tmp_path, np.array([0.0, 1.0, bad, 3.0]), monkeypatch)
    with pytest.raises(DataError, match=r"mnist.npz: y_train holds 1 non-integer or NaN labels .* index 2"):
        load_arrays("mnist", tmp_path)


def test_whole_float_labels_are_read_as_integers(tmp_path, monkeypatch):
    _labels_npz(tmp_path, np.array([0.0, 1.0, 9.0, 3.0]), monkeypatch)
    arrays, _ = load_arrays("mnist", tmp_path)
    assert arrays["y_train"].dtype == np.int64 and arrays["y_train"].tolist() == [0, 1, 9, 3]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("option", [["--device", "cuda"], ["--data-dir", "/nonexistent/data"]])
def test_missing_device_or_data_folder_is_reported_once_before_workers(
    tiny_root, capsys, monkeypatch, option
):
    monkeypatch.setattr(compute, "run_jobs", lambda *a, **k: pytest.fail("workers started"))
    monkeypatch.setattr(pipeline, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    argv = ["--profile", "t", "--no-book", "--no-progress", "--workers", "2", *option]
    assert pipeline.main(argv, root=tiny_root) == 1
    err = capsys.readouterr().err
    _one_line(err)
    assert ("device='cuda'" if "cuda" in option else "/nonexistent/data") in err
    monkeypatch.setattr(profiles, "REPO_ROOT", tiny_root)
    assert prefetch.main(["--profile", "t", "--workers", "2", *option]) == 2
    _one_line(capsys.readouterr().err)


# -- 4. provenance -------------------------------------------------------------------------


def test_run_info_only_from_a_full_build_and_says_what_was_computed(tmp_path, capsys):
    root = _fake_root(tmp_path, {"a": {"steps": 2}, "b": {}})
    info = root / "book" / "generated" / pipeline.RUN_INFO_NAME
    info.parent.mkdir(parents=True)
    info.write_text("from the last full build\n")
    assert pipeline.main(["--profile", "t", "--no-book", "--no-progress", "--only", "a"], root=root) == 0
    assert info.read_text() == "from the last full build\n"
    assert "left as it was" in capsys.readouterr().out
    plan = {"a": {"runs": 3, "to_compute": 1}}
    timings = pipeline.run_notebooks("t", root=root, progress=False, log=lambda _: None, plan=plan)
    text = info.read_text()
    assert "**`t`** profile" in text and "| `a` | executed | 1 computed, 2 read back |" in text
    assert "| `b` | executed | no training runs |" in text
    assert timings["notebooks"]["a"]["computed"] == 1


# -- 5. failures that speak ----------------------------------------------------------------


def test_full_disk_during_checkpoint_save_names_the_path(tmp_path, monkeypatch):
    ckpt = tmp_path / "table1" / "0123456789abcdef.ckpt.pt"
    Checkpointer(ckpt).save({"step": 1})
    before = ckpt.read_bytes()
    real_fdopen = os.fdopen

    def full(fd, mode="r", *a, **k):  # every write goes to /dev/full: ENOSPC, as on a full disk
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), mode)

    monkeypatch.setattr(results.os, "fdopen", full)
    with pytest.raises(StorageError) as info:
        Checkpointer(ckpt).save({"step": 2, "w": torch.ones(1000)})
    assert str(info.value) == (
        f"cannot write {ckpt}: no space left on the device; free some space "
        "or point results_dir at another disk"
    )
    assert info.value.errno == errno.ENOSPC
    assert ckpt.read_bytes() == before and list(ckpt.parent.iterdir()) == [ckpt]  # no temp left


def _read_only(monkeypatch, folder: Path) -> None:
    """Make creating files under ``folder`` fail with EROFS (as root, chmod would not)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_read_only_results_folder_is_one_line(tmp_path, capsys, monkeypatch):
    root = _fake_root(tmp_path, {"a": {}})
    _read_only(monkeypatch, root / "results")
    monkeypatch.setattr(pipeline, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    assert pipeline.main(["--profile", "t", "--no-book", "--no-progress"], root=root) == 1
    err = capsys.readouterr().err
    _one_line(err)
    assert f"cannot write {root / 'results' / 't'}: read-only file system; make the folder writable" in err


def test_cleanup_failure_never_masks_the_first_error(tmp_path, monkeypatch):
    root = _fake_root(tmp_path, {"a": {}})
    lines: list[str] = []

    def fail(*a, **k):
        _read_only(monkeypatch, root / "results")  # the timings write in `finally` fails too
        raise PipelineError("notebook nbs/a.ipynb failed in cell 2: ValueError: first")

    monkeypatch.setattr(pipeline, "execute_notebook", fail)
    with pytest.raises(PipelineError, match="ValueError: first") as info:
        pipeline.run_notebooks("t", root=root, progress=False, log=lines.append, plan={})
    assert info.value.__context__ is None or not isinstance(info.value.__context__, OSError)
    assert any("the timings were not saved (cannot write" in line for line in lines)


def test_killed_kernel_names_the_notebook(tmp_path):
    root = _fake_root(tmp_path, {"a": {}})
    nb = nbformat.read(root / "nbs" / "a.ipynb", as_version=4)
    nb.cells[1].source = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    nbformat.write(nb, root / "nbs" / "a.ipynb")
    page = root / "book" / "generated" / "a.ipynb"
    page.parent.mkdir(parents=True)
    page.write_text("previous page")
    with pytest.raises(PipelineError, match=r"the kernel executing notebook .*a.ipynb died"):
        pipeline.run_notebooks("t", root=root, progress=False, log=lambda _: None, plan={})
    assert page.read_text() == "previous page" and not list(page.parent.glob(".*tmp*"))


def test_stale_temp_files_are_removed_on_the_next_run(tmp_path):
    root = _fake_root(tmp_path, {"a": {}})
    stale = [
        root / "results" / "t" / "table1" / ".0123.json.x1.tmp",
        root / "book" / "generated" / ".a.k2j3.tmp.ipynb",
    ]
    old = time.time() - 2 * results.STALE_TEMP_S
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
        os.utime(path, (old, old))
    keep = root / "results" / "t" / "table1" / "0123.json"
    keep.write_text("{}")
    live = root / "book" / "generated" / ".a.other.tmp.ipynb"  # another pipeline's page, being written
    live.write_text("in progress")
    lines: list[str] = []
    folders = [root / "results" / "t", root / "book" / "generated"]
    pipeline.preflight("t", None, {}, root, folders, lines.append)
    assert not any(p.exists() for p in stale) and keep.read_text() == "{}" and live.exists()
    assert len(lines) == 2 and all("stale temporary file" in line for line in lines)


def test_records_are_world_readable(tmp_path):
    _, path = _store(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION


def test_resumed_layer_seconds_count_the_time_before_the_interruption(tmp_path, tiny_config, mnist_small):
    config = tiny_config(method="ib", max_layers=1)
    ckpt = tmp_path / "table1" / f"{config_id(config.to_dict())}.ckpt.pt"
    real_save = Checkpointer.save

    def interrupt(self, state):  # the first mid-layer checkpoint is written, then the run dies
        real_save(self, state)
        raise KeyboardInterrupt

    Checkpointer.save = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config, mnist_small, torch.device("cpu"), checkpoint=ckpt, progress=False)
    finally:
        Checkpointer.save = real_save
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 2 and state["layer_elapsed"] > 0
    state["layer_elapsed"] = 100.0  # as if the first half had taken 100 s
    real_save(Checkpointer(ckpt), state)
    out = train(config, mnist_small, torch.device("cpu"), checkpoint=ckpt, progress=False)
    assert 100.0 < out["timings"]["layer_seconds"][0] < 160.0


def test_html_page_saved_as_npz_is_not_an_npz(tmp_path):
    (tmp_path / "mnist.npz").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(DataError) as info:
        load_arrays("mnist", tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'mnist.npz'} is not an .npz file" in message and "an HTML page" in message
    assert "python -m ibcore.core.data download mnist --data-dir DIR" in message
    assert (tmp_path / "mnist.npz").read_text().startswith("<!DOCTYPE")  # left for the user to see


def test_record_path_and_quarantine_keep_the_relative_path(tmp_path, notes):
    config = _config()
    path = record_path(tmp_path, "figure1", config)
    path.parent.mkdir(parents=True)
    path.write_text("{")
    (tmp_path / "quarantine" / "figure1").mkdir(parents=True)
    (tmp_path / "quarantine" / "figure1" / path.name).write_text("earlier")
    assert read_record(tmp_path, "figure1", config) is None
    moved = sorted((tmp_path / "quarantine" / "figure1").iterdir())
    assert len(moved) == 2 and (tmp_path / "quarantine" / "figure1" / path.name).read_text() == "earlier"
