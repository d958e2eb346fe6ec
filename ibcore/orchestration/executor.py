"""Run many independent training runs on Dask distributed, or in this process.

* ``workers=N`` (no scheduler): an embedded ``LocalCluster`` of N single-threaded worker
  processes, no dashboard port. Each worker watches this process and exits as soon as it is
  gone (killed, even with SIGKILL), so no worker outlives its parent.
* ``scheduler="tcp://host:8786"`` (or the ``IBCORE_SCHEDULER`` environment variable): the same
  runs go to an existing Dask cluster whose workers can import ``ibcore`` and see the same
  results folder.
* ``workers=1`` and no scheduler: the runs are done one after another in this process.

A worker that dies during a run (killed, out of memory) is replaced and the run is given to
another worker (the scheduler's ``distributed.scheduler.allowed-failures``, default 3); a run
that raises is reported at the end, after the others. One writer per record: every run takes
a lock file next to its record (:mod:`ibcore.orchestration.locks`), also in this process; a run
whose lock is held by a live process (another pipeline on the same folder) is not trained here:
it is reported as running elsewhere, waited for, and then read back (or trained, if that
process died before storing it).
Ctrl-C or SIGTERM stop every worker within seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibcore.orchestration.locks import RunningElsewhere, lock_owner

#: The environment variable naming the scheduler of an existing Dask cluster.
SCHEDULER_ENV = "IBCORE_SCHEDULER"

#: The environment variable that gives the workers of the embedded cluster their parent's pid.
PARENT_ENV = "IBCORE_PARENT_PID"

#: Seconds between two looks at the futures, the locks and the parent process.
POLL_S = 0.2


# -- worker side ---------------------------------------------------------------------------


def _watch_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """End this process as soon as ``parent_pid`` is gone (or a zombie)."""
    import psutil

    try:
        parent = psutil.Process(parent_pid)
        born = parent.create_time()
    except psutil.Error:
        os._exit(3)
    while True:
        try:
            alive = parent.create_time() == born and parent.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            os._exit(3)
        time.sleep(poll_s)


_WATCHED: set[int] = set()


def watch_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid`` is gone, from a daemon thread (idempotent)."""
    if parent_pid not in _WATCHED:
        _WATCHED.add(parent_pid)
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="ibcore-watch").start()


def single_threaded() -> None:
    """One thread for torch and the BLAS libraries in this (worker) process."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def dask_setup(worker: Any) -> None:
    """Dask preload hook (``preload=["ibcore.orchestration.executor"]``): a worker of the embedded cluster
    ends as soon as the process that started it (``$IBCORE_PARENT_PID``) is gone."""
    pid = os.environ.get(PARENT_ENV)
    if pid:
        watch_parent(int(pid))


def _call(fn: Callable, job: Any, args: tuple) -> Any:
    single_threaded()
    return fn(job, *args)


# -- parent side ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What :func:`execute` did: results by job index, failures, runs waited for elsewhere."""

    results: dict[int, Any] = field(default_factory=dict)
    failed: list[tuple[int, BaseException]] = field(default_factory=list)
    elsewhere: list[int] = field(default_factory=list)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread for the block (so it stops the
    workers and says so, like Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back during the block (a cluster half started cannot be
    stopped cleanly) and raise KeyboardInterrupt at its end if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        came.append(signum)

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
    if came:
        raise KeyboardInterrupt


def scheduler_address(scheduler: str | None) -> str | None:
    """The scheduler given, else ``$IBCORE_SCHEDULER``, else None (embedded cluster)."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def execute(
    jobs: Sequence[Any],
    fn: Callable[..., Any],
    args: tuple = (),
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_done: Callable[[int, Any], None] | None = None,
    on_failed: Callable[[int, BaseException], None] | None = None,
    on_elsewhere: Callable[[int, RunningElsewhere], None] | None = None,
) -> Outcome:
    """Call ``fn(job, *args)`` for every job: in this process (``workers == 1``, no scheduler),
    on an embedded LocalCluster of ``workers`` processes, or on the cluster at ``scheduler``.
    ``fn`` raising :class:`RunningElsewhere` makes the job wait for that lock to be released,
    then run again. The callbacks report each job as it ends."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    scheduler = scheduler_address(scheduler)
    outcome = Outcome()
    waiting: dict[int, Path] = {}

    def settle(i: int, call: Callable[[], Any]) -> None:
        try:
            result = call()
        except RunningElsewhere as err:
            if i not in outcome.elsewhere:
                outcome.elsewhere.append(i)
                if on_elsewhere:
                    on_elsewhere(i, err)
            waiting[i] = err.lock
        except Exception as err:  # noqa: BLE001 - reported, the other runs go on
            outcome.failed.append((i, err))
            if on_failed:
                on_failed(i, err)
        else:
            outcome.results[i] = result
            if on_done:
                on_done(i, result)

    def released() -> list[int]:
        free = [i for i, lock in waiting.items() if lock_owner(lock) is None]
        for i in free:
            del waiting[i]
        return free

    with _sigterm_interrupts():
        if workers == 1 and scheduler is None:
            for i, job in enumerate(jobs):
                settle(i, lambda job=job: fn(job, *args))
            while waiting:
                time.sleep(POLL_S)
                for i in released():
                    settle(i, lambda i=i: fn(jobs[i], *args))
            return outcome
        with _dask_client(workers, scheduler) as client:
            pending: dict[Any, int] = {}

            def submit(i: int) -> None:
                fut = client.submit(_call, fn, jobs[i], args, pure=False, retries=0)
                pending[fut] = i

            for i in range(len(jobs)):
                submit(i)
            while pending or waiting:
                done = [f for f in pending if f.done()]
                for fut in done:
                    i = pending.pop(fut)
                    settle(i, fut.result)
                    fut.release()
                for i in released():
                    submit(i)
                if not done:
                    time.sleep(POLL_S)
    return outcome


#: Dask's setting that leaves ``MALLOC_TRIM_THRESHOLD_`` out of the workers' environment (a value of
#: None unsets a variable of ``distributed.nanny.pre-spawn-environ``).
#:
#: Dask sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker by default, to hand freed memory back
#: to the system. Setting it turns off glibc's dynamic mmap threshold, so every block over 128 KiB
#: (a batch of 128 x 512 float32 activations is 256 KiB) is mapped afresh, and its pages faulted
#: in, at each allocation: an IB step ran about twice as slow in such a worker as in a plain
#: process (``benchmarks/worker_environment.py``, ``results/bench/worker_environment.json``). Runs
#: allocate the same blocks step after step: glibc's default suits them.
NO_MALLOC_TRIM = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client of the cluster at ``scheduler``, or of an embedded LocalCluster of
    ``workers`` single-threaded processes that die with this one. On the way out (Ctrl-C
    included) the embedded workers are stopped within seconds."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = Client(scheduler, timeout="20s")
        try:
            yield client
        finally:
            client.close()
        return
    _quiet_resource_tracker()
    cluster = None
    try:
        settings = {"distributed.scheduler.allowed-failures": 3, **NO_MALLOC_TRIM}
        with _deferred_interrupts(), dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                # the scheduler's HTTP server binds a free port (no fixed 8787 to collide with
                # another run) and serves no dashboard
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
                memory_limit=0,  # no nanny limit: a big run is not paused or killed by Dask
                silence_logs=logging.CRITICAL,
                preload=["ibcore.orchestration.executor"],
                env={PARENT_ENV: str(os.getpid()), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            )
        with Client(cluster) as client:
            yield client
    finally:
        # The runs are over (or interrupted: a worker in the middle of a run does not stop by
        # itself). Tell the nannies not to restart their workers, kill those, close the rest.
        if cluster is not None:
            # killed workers make the scheduler log closed connections with tracebacks; they are
            # expected here and would bury the one-line interrupt message
            quiet = {name: logging.getLogger(name).level for name in ("distributed", "tornado")}
            for name in quiet:
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
            for nanny in list(cluster.workers.values()):
                with contextlib.suppress(Exception):
                    nanny.close_gracefully(reason="ibcore-done")
            pids = worker_pids(cluster)
            _kill(pids)
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)
            _kill(pids + worker_pids(cluster))
            if sys.exc_info()[0] is None:  # interrupted: the process ends, late messages stay quiet
                for name, level in quiet.items():
                    logging.getLogger(name).setLevel(level)


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker without its warning about the semaphores of
    killed workers (it removes them; the warning would follow the one-line interrupt message)."""
    from multiprocessing import resource_tracker

    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore::UserWarning:multiprocessing.resource_tracker"
    try:
        resource_tracker.ensure_running()
    finally:
        if before is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = before


def worker_pids(cluster: Any) -> list[int]:
    """The process ids of the workers of an embedded LocalCluster."""
    pids = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(nanny, "pid", None)
        if pid:
            pids.append(pid)
    return pids


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
