"""Group jobs (issue 14, opt-in): the training runs that share every shape trained as one model.

:func:`group_jobs` turns the single-run jobs of the :class:`~ibcore.core.config.TrainConfig`
kinds (:data:`GROUPED_KINDS`) that share :func:`ibcore.core.grouped.group_key` and results
folder into one job per group of at most ``max_group`` runs; figure1 and truth jobs, and runs
with a checkpoint to resume from, stay single. :func:`run_group_job` takes the lock file of
every run of a group (the lock of a single run, :mod:`ibcore.orchestration.locks`), skips the
runs already stored and trains the others through :func:`ibcore.core.grouped.run_groups`, which
writes each run's record where :func:`ibcore.experiments.table1.run_configs` would.

The records of a group equal those of separate runs only within floating-point tolerance: at
paper width, runs with beta > 0 drift by up to 2.3 points of test accuracy (rounding amplified
by Adam; ``results/bench/grouped_cpu.json``), so grouping is off unless asked for (``--grouped``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from ibcore.core.results import record_path
from ibcore.orchestration.jobs import Job, lock_path, run_job
from ibcore.orchestration.jobs import is_stored as _is_stored

#: Record kinds whose runs are TrainConfig trainings that may be grouped (fig3 keeps its models).
GROUPED_KINDS = ("table1", "compression", "info_plane", "fig3")
#: Default largest group (``--max-group``).
MAX_GROUP = 8
#: The help of ``--grouped`` (prefetch and pipeline): what it does and why it is off by default.
GROUPED_HELP = (
    "train the runs that share every shape (seeds, betas, sigmas of one cell) as one batched model, "
    "in groups of at most --max-group runs (figure1 and truth runs stay single). Off by default: at "
    "paper width grouped runs with beta > 0 drift from the single runs by up to 2.3 points of test "
    "accuracy (float rounding amplified by Adam; results/bench/grouped_cpu.json)"
)
#: A group job's cost: its costliest run's plus this share of each other run's (the batched step
#: is launch-bound on a GPU, so a run more costs little there); a scheduling guess, no result.
RUN_SHARE = 0.1


def checkpoint_path(job: Job) -> Path:
    """The resume checkpoint ``<record>.ckpt.pt`` a single run of ``job`` leaves when cut."""
    return record_path(job.results_dir, job.kind, job.config).with_suffix(".ckpt.pt")


def groupable(job: Job) -> bool:
    """Whether ``job`` is a single TrainConfig run that may join a group (one with a checkpoint
    resumes alone instead)."""
    return not job.members and job.kind in GROUPED_KINDS and not checkpoint_path(job).exists()


def group_cost(members: Sequence[Job]) -> float:
    """:data:`RUN_SHARE`: the costliest run's cost plus a small share of each other run's."""
    costs = sorted((m.cost for m in members), reverse=True)
    return costs[0] + RUN_SHARE * sum(costs[1:])


def group_jobs(jobs: Sequence[Job], max_group: int = MAX_GROUP) -> list[Job]:
    """``jobs`` with the groupable runs that share results folder, kind and
    :func:`ibcore.core.grouped.group_key` merged into group jobs of at most ``max_group`` runs
    (a group of one stays the single job); longest first."""
    if max_group < 1:
        raise ValueError(f"max_group must be >= 1, got {max_group}")
    from ibcore.core.config import TrainConfig
    from ibcore.core.grouped import group_key

    out: list[Job] = []
    by_key: dict[tuple[str, str, str], list[Job]] = {}
    for job in jobs:
        if groupable(job):
            key = (job.results_dir, job.kind, group_key(TrainConfig.from_dict(job.config)))
            by_key.setdefault(key, []).append(job)
        else:
            out.append(job)
    for members in by_key.values():
        for k in range(0, len(members), max_group):
            chunk = members[k : k + max_group]
            if len(chunk) == 1:
                out.append(chunk[0])
                continue
            first = chunk[0]
            key = "group:" + "|".join(m.key for m in chunk)
            cost = group_cost(chunk)
            out.append(
                Job(
                    first.stem,
                    first.kind,
                    first.results_dir,
                    first.config,
                    key,
                    cost,
                    first.dataset,
                    members=tuple(chunk),
                )
            )
    return sorted(out, key=lambda j: -j.cost)


def run_count(jobs: Sequence[Job]) -> int:
    """How many runs ``jobs`` train (a group job counts its members)."""
    return sum(len(j.members) or 1 for j in jobs)


def run_any(job: Job, device: str = "auto", data_dir: str | None = None) -> float | None:
    """:func:`run_group_job` for a group job, :func:`ibcore.orchestration.jobs.run_job` for a
    single one (the runner of :func:`ibcore.orchestration.compute.run_jobs` when grouped)."""
    return run_group_job(job, device, data_dir) if job.members else run_job(job, device, data_dir)


def run_group_job(job: Job, device: str = "auto", data_dir: str | None = None) -> float | None:
    """Train the runs of group job ``job`` not stored yet as one batched model, each under its
    own lock file, and store each run's record; returns the seconds, or None when every run was
    already stored once its lock was taken. Runs whose lock a live process holds are left to it:
    once the others are stored, :class:`ibcore.orchestration.locks.RunningElsewhere` is raised for
    the first of them (the executor waits for it, then calls again, which skips the stored runs)."""
    from ibcore.orchestration.locks import RunningElsewhere, run_lock

    start = time.perf_counter()
    away: list[RunningElsewhere] = []
    todo: list[Job] = []
    with contextlib.ExitStack() as locks:
        for member in job.members:
            try:
                locks.enter_context(run_lock(lock_path(member)))
            except RunningElsewhere as err:
                away.append(err)
                continue
            if not _is_stored(member):
                todo.append(member)
        if todo:
            from ibcore.core.runtime import run_settings

            with run_settings():  # as every single run (ibcore.orchestration.jobs.run_job)
                _train(todo, job.results_dir, job.kind, device, data_dir)
    if away:
        raise away[0]
    return time.perf_counter() - start if todo else None


def _train(members: Sequence[Job], results_dir: str, kind: str, device: str, data_dir: str | None) -> None:
    """Train ``members`` (one group key) through :func:`ibcore.core.grouped.run_groups` and drop
    any stale single-run checkpoint of theirs once their records are stored."""
    from ibcore.core.config import TrainConfig
    from ibcore.core.grouped import run_groups
    from ibcore.core.runtime import resolve_device
    from ibcore.experiments.table1 import DataCache

    dev = resolve_device(device)
    configs = [TrainConfig.from_dict(m.config) for m in members]
    cache = DataCache(data_dir, dev)
    run_groups(configs, results_dir, dev, cache.get, kind=kind, save_models=kind == "fig3")
    for member in members:
        if _is_stored(member):
            checkpoint_path(member).unlink(missing_ok=True)
