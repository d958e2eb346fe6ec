"""ibcore.orchestration.executor: training runs on Dask distributed (an embedded LocalCluster here).

Each record has one writer, a worker that dies is replaced and its run retried, no worker
outlives a killed or interrupted parent, and two processes on one results folder never train
the same run twice (a lock file per run).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import psutil
import pytest
import yaml

from ibcore.core.results import record_path
from ibcore.orchestration import compute, executor, locks
from ibcore.orchestration import jobs as jobs_

REPO = Path(__file__).resolve().parent.parent

# Workers unpickle this module's functions by value (the tests folder is not importable there).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _params(results_dir: Path, seeds: list[int], ce_steps: int = 8) -> dict:
    """table1 notebook parameters of tiny cross-entropy runs (one per seed)."""
    return {
        "results_dir": str(results_dir),
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 4, "ce_steps": ce_steps}],
        "rows": ["ce"],
        "seeds": seeds,
        "batch_size": 32,
        "probe_steps": 2,
        "checkpoints": 1,
        "checkpoint_probe_steps": 0,
        "variants": [],
    }


def _records(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json"))


def _script(tmp_path: Path, params: dict, argv: list[str]) -> list[str]:
    """A command running ``python -m ibcore.prefetch`` on a one-notebook profile ``t`` (the
    table1 notebook with ``params``) in a project root under ``tmp_path``."""
    root = tmp_path / "root"
    (root / "nbs").mkdir(parents=True, exist_ok=True)
    (root / "nbs" / "table1.py").write_text((REPO / "nbs" / "table1.py").read_text())
    (root / "profiles").mkdir(exist_ok=True)
    (root / "profiles" / "t.yml").write_text(yaml.safe_dump({"table1": params}))
    script = tmp_path / "run_prefetch.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        "from ibcore.core import profiles\nfrom ibcore.orchestration import prefetch\n"
        "if __name__ == '__main__':\n"
        f"    profiles.REPO_ROOT = Path({str(root)!r})\n"
        "    sys.exit(prefetch.main(sys.argv[1:]))\n"
    )
    return [sys.executable, str(script), "--profile", "t", *argv]


def _popen(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(executor.SCHEDULER_ENV, None)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _started(tmp_path: Path, params: dict, n_locks: int) -> tuple[subprocess.Popen, list[int]]:
    """Start prefetch with 2 workers on long runs; return once ``n_locks`` runs are training,
    with the pids of every process under it."""
    proc = _popen(_script(tmp_path, params, ["--workers", "2"]))
    results = Path(params["results_dir"])
    _wait_for(lambda: len(list(results.rglob("*.lock"))) >= n_locks or proc.poll() is not None, 120, "runs")
    assert proc.poll() is None, proc.communicate()
    children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    assert len(children) >= 2, "two worker processes"
    return proc, children


# -- locks ---------------------------------------------------------------------------------


def test_run_lock_is_exclusive_takes_over_stale_locks_and_is_released(tmp_path):
    lock = tmp_path / "r.json.lock"
    with locks.run_lock(lock):
        assert lock.read_text().split()[1] == str(os.getpid())
        with pytest.raises(executor.RunningElsewhere, match="running elsewhere") as info:
            with locks.run_lock(lock):
                pass
    back = pickle.loads(pickle.dumps(info.value))  # as a Dask worker sends it back
    assert (back.lock, back.owner, str(back)) == (lock, info.value.owner, str(info.value))
    assert not lock.exists()
    lock.write_text("")  # just created by another process, its owner not written yet
    with pytest.raises(executor.RunningElsewhere):
        with locks.run_lock(lock):
            pass
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(f"{socket.gethostname()} {dead.pid}\n")
    with locks.run_lock(lock):  # the owner is gone: taken over
        assert lock.read_text().split()[1] == str(os.getpid())
    assert not lock.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_locked_by_a_live_process_is_waited_for_not_trained_twice(tmp_path, workers):
    """The lock is held by a live process: the run is reported as running elsewhere, waited
    for, then trained here once that process is gone without storing it."""
    (job,) = jobs_.stem_jobs("table1", _params(tmp_path, [0]))
    holder = subprocess.Popen(["sleep", "120"])
    lock = jobs_.lock_path(job)
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{socket.gethostname()} {holder.pid}\n")
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if "running elsewhere" in line:
            holder.kill()  # that process dies without storing the run

    summary = compute.run_jobs([job], workers=workers, log=log)
    holder.wait()
    assert summary["elsewhere"] == [jobs_.describe(job)]
    assert any("running elsewhere" in line for line in lines), lines
    assert sum("done in" in line for line in lines) == 1
    assert record_path(job.results_dir, job.kind, job.config).is_file() and not lock.exists()


# -- a LocalCluster ------------------------------------------------------------------------


def test_a_small_sweep_on_a_local_cluster_stores_each_record_once(tmp_path):
    """Three runs and a failing one on two workers: the failure is reported at the end, each
    good run is trained once and stored, no lock is left."""
    jobs = jobs_.stem_jobs("table1", _params(tmp_path, [0, 1, 2]))
    bad = jobs_.Job("table1", "table1", str(tmp_path), {**jobs[0].config, "lr": -1.0}, "bad")
    lines: list[str] = []
    with pytest.raises(RuntimeError, match=r"(?s)1 of 4 runs failed.*lr must be > 0"):
        compute.run_jobs([bad, *jobs], workers=2, log=lines.append)
    assert sum("done in" in line for line in lines) == 3, lines
    assert _records(tmp_path) == sorted(record_path(j.results_dir, j.kind, j.config) for j in jobs)
    assert not list(tmp_path.rglob("*.lock"))
    assert all(jobs_.is_stored(j) for j in jobs)


def _crash_once(job: jobs_.Job, device: str, data_dir: str | None) -> float | None:
    """The first call kills its worker process (as the OOM killer would); later calls run."""
    marker = Path(job.results_dir) / "crashed"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return jobs_.run_job(job, device, data_dir)


def test_a_run_whose_worker_died_is_retried_and_stored(tmp_path):
    jobs = jobs_.stem_jobs("table1", _params(tmp_path, [0]))
    lines: list[str] = []
    summary = compute.run_jobs(jobs, workers=2, log=lines.append, runner=_crash_once)
    assert (tmp_path / "crashed").exists(), "a worker died"
    assert not summary["failed"] and sum("done in" in line for line in lines) == 1
    assert all(jobs_.is_stored(j) for j in jobs)


def _note_environ(job: jobs_.Job, device: str, data_dir: str | None) -> float | None:
    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
    (Path(job.results_dir) / "environ.json").write_text(json.dumps({k: os.environ.get(k) for k in names}))
    return jobs_.run_job(job, device, data_dir)


def test_workers_start_without_dasks_malloc_trim_threshold(tmp_path, monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic mmap threshold and slowed every run
    in the workers (ibcore.orchestration.executor.NO_MALLOC_TRIM); the embedded
    cluster's workers start without it, single-threaded as before."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # another test's cluster may have set it here
    jobs = jobs_.stem_jobs("table1", _params(tmp_path, [0]))
    summary = compute.run_jobs(jobs, workers=2, log=lambda _: None, runner=_note_environ)
    assert not summary["failed"]
    seen = json.loads((tmp_path / "environ.json").read_text())
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # nor is this process's environment changed


def _note_pid(job: jobs_.Job, device: str, data_dir: str | None) -> float | None:
    (Path(job.results_dir) / "pid").write_text(str(os.getpid()))
    return jobs_.run_job(job, device, data_dir)


def test_runs_go_to_an_existing_cluster_named_by_the_environment(tmp_path, monkeypatch):
    """``$IBCORE_SCHEDULER`` (like ``--scheduler``) sends the runs to that cluster's workers."""
    import logging

    from distributed import LocalCluster

    jobs = jobs_.stem_jobs("table1", _params(tmp_path, [0]))
    with LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        monkeypatch.setenv(executor.SCHEDULER_ENV, cluster.scheduler_address)
        worker = cluster.workers[0].pid
        lines: list[str] = []
        summary = compute.run_jobs(jobs, workers=1, log=lines.append, runner=_note_pid)
        assert summary["runs"] == 1 and sum("done in" in line for line in lines) == 1
        assert (tmp_path / "pid").read_text() == str(worker), "run by the cluster's worker"
        assert jobs_.is_stored(jobs[0])
        assert cluster.workers[0].pid == worker, "the cluster's workers are left running"


# -- interruptions -------------------------------------------------------------------------


def test_killed_parent_leaves_no_worker_behind(tmp_path):
    params = _params(tmp_path / "results", [0, 1], ce_steps=100_000)
    proc, children = _started(tmp_path, params, 2)
    proc.kill()  # SIGKILL: no cleanup code runs in the parent
    proc.wait()
    _wait_for(lambda: not _alive(children), 10, f"the workers {children} to end")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_within_seconds_with_a_message(tmp_path, sig):
    params = _params(tmp_path / "results", [0, 1], ce_steps=100_000)
    proc, children = _started(tmp_path, params, 1)
    start = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    seconds = time.monotonic() - start
    assert proc.returncode == 130 and seconds < 10, (proc.returncode, seconds, err[-2000:])
    assert err.strip().splitlines() == [
        "[prefetch] interrupted: workers stopped; finished runs are stored, a started one resumes"
    ]
    _wait_for(lambda: not _alive(children), 5, f"the workers {children} to end")


def test_two_concurrent_prefetches_train_each_run_once(tmp_path):
    """A Dask prefetch and an in-process one on the same runs: every run is trained by one."""
    params = _params(tmp_path / "results", [0, 1, 2, 3], ce_steps=200)
    procs = [
        _popen(_script(tmp_path, params, ["--workers", "1"])),
        _popen(_script(tmp_path, params, ["--workers", "2"])),
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    text = "".join(o[0] for o in outs)
    assert text.count("run done in") == 4, text
    assert len(_records(tmp_path / "results")) == 4
    assert not list((tmp_path / "results").rglob("*.lock"))


def test_two_concurrent_single_worker_prefetches_on_the_tiny_profile_train_each_run_once(tmp_path):
    """Two ``--workers 1`` prefetches (runs trained in-process, as the pipeline does with one
    worker) of the tiny profile's beta sweep on one results folder: each run is trained by one
    of them; the other waits for its lock and reads the record back."""
    root = tmp_path / "root"
    (root / "nbs").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")  # results/tiny is taken from here
    shutil.copy(REPO / "nbs" / "beta_sweep.py", root / "nbs")
    (root / "profiles").mkdir()
    shutil.copy(REPO / "profiles" / "tiny.yml", root / "profiles")
    script = tmp_path / "run_prefetch.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        "from ibcore.core import profiles\nfrom ibcore.orchestration import prefetch\n"
        f"profiles.REPO_ROOT = Path({str(root)!r})\n"
        "sys.exit(prefetch.main(sys.argv[1:]))\n"
    )
    cmd = [sys.executable, str(script), "--profile", "tiny", "--only", "beta_sweep", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(executor.SCHEDULER_ENV, None)
    procs = [
        subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    n_runs = len(jobs_.stem_plan("tiny", only=["beta_sweep"], root=root)["beta_sweep"])
    text = "".join(o[0] for o in outs)
    assert text.count("run done in") == n_runs == 3, text
    results = root / "results" / "tiny"
    assert len(_records(results)) == n_runs, text
    assert not list(results.rglob("*.lock"))
