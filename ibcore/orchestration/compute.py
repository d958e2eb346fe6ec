"""Compute the runs of notebooks: the one library call behind the pipeline, the prefetch command
and a notebook asked to compute its own missing runs.

:func:`compute_runs` takes the full parameters of some notebooks, lists their runs not yet
stored (:mod:`ibcore.orchestration.jobs`) and executes them (:func:`run_jobs`, on
:mod:`ibcore.orchestration.executor`: in this process, on local Dask workers or on a cluster),
each under its lock file, in rounds while the runs just stored declare new ones.
:func:`run_profile` does it for a whole profile (``python3 -m ibcore.pipeline`` and
``python3 -m ibcore.prefetch``); :func:`ensure_records` for one notebook, from its own
namespace: with ``run_missing`` false (the notebooks' default) it only checks that every run is
stored, and otherwise names the command that computes them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ibcore.core.profiles import PIPELINE_PARAMS, notebook_defaults, notebook_source
from ibcore.core.results import project_path, read_records
from ibcore.orchestration.groups import MAX_GROUP, group_jobs, run_any, run_count
from ibcore.orchestration.jobs import Job, describe, missing_jobs, plan_jobs, run_job, stem_params

#: Rounds of :func:`compute_runs`: a round's stored runs may declare new ones (the compression
#: study's confirmation stage follows from its selection stage).
MAX_ROUNDS = 4
#: Parameters a notebook always has besides its parameters cell (the pipeline's and the device).
ALWAYS_PARAMS = PIPELINE_PARAMS | {"device", "data_dir"}


class MissingRecords(RuntimeError):
    """A notebook reads runs that are not stored; the message names the command computing them."""


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    device: str = "auto",
    data_dir: str | None = None,
    log: Callable[[str], None] = print,
    *,
    scheduler: str | None = None,
    runner: Callable[..., float | None] = run_job,
    grouped: bool = False,
    max_group: int = MAX_GROUP,
) -> dict[str, Any]:
    """Run ``jobs`` on ``workers`` single-threaded Dask worker processes (in this process when
    ``workers == 1``), or on the Dask cluster at ``scheduler`` (default ``$IBCORE_SCHEDULER``),
    through :func:`ibcore.orchestration.executor.execute`: a failing run is reported and the others go on, a
    run whose worker died is retried, a run another process holds the lock of is waited for.
    ``runner(job, device, data_dir)`` does one job. ``grouped``: the runs that share every shape
    become group jobs of at most ``max_group`` runs, each trained as one batched model
    (:func:`ibcore.orchestration.groups.group_jobs`). Returns {"runs", "jobs", "failed",
    "elsewhere", "seconds"}; raises RuntimeError listing the failed jobs at the end (their
    finished neighbours are stored)."""
    from tqdm.auto import tqdm

    from ibcore.orchestration.executor import execute, scheduler_address
    from ibcore.orchestration.locks import RunningElsewhere

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    failed: list[str] = []
    elsewhere: list[str] = []
    if grouped:
        jobs = group_jobs(jobs, max_group)
        runner = run_any if runner is run_job else runner
    if not jobs:
        return {"runs": 0, "jobs": 0, "failed": failed, "elsewhere": elsewhere, "seconds": 0.0}
    address = scheduler_address(scheduler)
    where = (
        f"on the Dask cluster at {address}"
        if address
        else (f"{workers} worker processes" if workers > 1 else "in this process")
    )
    bar = tqdm(total=len(jobs), desc=f"training ({where})", file=sys.stdout)

    def done(i: int, seconds: float | None) -> None:
        bar.update(1)
        if seconds is None:
            log(f"[prefetch] {describe(jobs[i])} was stored by another process")
        else:
            what = f"group of {len(jobs[i].members)} runs" if jobs[i].members else "run"
            log(f"[prefetch] {jobs[i].stem} {jobs[i].dataset} {what} done in {seconds:.0f} s")

    def fail(i: int, err: BaseException) -> None:
        bar.update(1)
        failed.append(f"{describe(jobs[i])}: {type(err).__name__}: {err}")
        log(f"[prefetch] {describe(jobs[i])} failed: {type(err).__name__}: {err}")

    def away(i: int, err: RunningElsewhere) -> None:
        elsewhere.append(describe(jobs[i]))
        log(f"[prefetch] {describe(jobs[i])} is running elsewhere ({err.owner}); waiting for it")

    try:
        execute(
            jobs,
            runner,
            (device, data_dir),
            workers=workers,
            scheduler=scheduler,
            on_done=done,
            on_failed=fail,
            on_elsewhere=away,
        )
    finally:
        bar.close()
    summary = {
        "runs": run_count(jobs),
        "jobs": len(jobs),
        "failed": failed,
        "elsewhere": elsewhere,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(jobs)} {'jobs' if grouped else 'runs'} failed "
            "(the others are stored):\n  " + "\n  ".join(failed)
        )
    return summary


def compute_runs(
    params_by_stem: Mapping[str, dict[str, Any]],
    workers: int = 1,
    *,
    device: str | None = None,
    data_dir: str | None = None,
    datasets: Sequence[str] | None = None,
    scheduler: str | None = None,
    log: Callable[[str], None] = print,
    label: str = "",
    grouped: bool = False,
    max_group: int = MAX_GROUP,
) -> dict[str, Any]:
    """Execute every run of the notebooks ``{stem: full parameters}`` not yet stored (on
    ``datasets`` only, when given), again while the runs just stored declare new ones (at most
    :data:`MAX_ROUNDS` rounds). ``device``/``data_dir`` default to the notebooks' own
    (``auto``/None). ``grouped`` (off by default) trains the runs that share every shape in
    groups of at most ``max_group`` (:mod:`ibcore.orchestration.groups`). Returns {"runs",
    "failed", "seconds"}; a failed run raises RuntimeError after the others are stored, a bad
    parameter ValueError before any run."""
    first = next(iter(params_by_stem.values()), {})
    device = device or first.get("device") or "auto"
    data_dir = data_dir if data_dir is not None else first.get("data_dir")
    total: dict[str, Any] = {"runs": 0, "failed": [], "seconds": 0.0}
    for _ in range(MAX_ROUNDS):
        jobs = missing_jobs(plan_jobs(params_by_stem, label), datasets)
        if not jobs:
            break
        what = f"profile {label!r}" if label else ", ".join(params_by_stem)
        log(f"[prefetch] {what}: {len(jobs)} runs to do")
        summary = run_jobs(
            jobs, workers, device, data_dir, log, scheduler=scheduler, grouped=grouped, max_group=max_group
        )
        total["runs"] += summary["runs"]
        total["seconds"] = round(total["seconds"] + summary["seconds"], 2)
    return total


def run_profile(
    profile_name: str,
    workers: int,
    *,
    only: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
    log: Callable[[str], None] = print,
    scheduler: str | None = None,
    grouped: bool = False,
    max_group: int = MAX_GROUP,
) -> dict[str, Any]:
    """:func:`compute_runs` of the selected notebooks of a profile (on ``workers`` local
    processes or the Dask cluster at ``scheduler``; ``grouped``: in group jobs of at most
    ``max_group`` runs). Returns {"runs", "failed", "seconds"}."""
    overrides = overrides or {}
    params = stem_params(profile_name, only=only, overrides=overrides, root=root)
    return compute_runs(
        params,
        workers,
        device=overrides.get("device") or "auto",
        data_dir=overrides.get("data_dir"),
        datasets=datasets,
        scheduler=scheduler,
        log=log,
        label=profile_name,
        grouped=grouped,
        max_group=max_group,
    )


def notebook_params(stem: str, namespace: Mapping[str, Any], nbs_dir: Path | None = None) -> dict[str, Any]:
    """The parameters of notebook ``stem`` found in ``namespace`` (e.g. its ``globals()``): the
    names of its parameters cell (``nbs/<stem>.py``) and :data:`ALWAYS_PARAMS`."""
    known = set(notebook_defaults(notebook_source(Path(nbs_dir or project_path("nbs")), stem)))
    return {k: namespace[k] for k in sorted(known | ALWAYS_PARAMS) if k in namespace}


def ensure_records(
    stem: str,
    namespace: Mapping[str, Any],
    *,
    run_missing: bool | None = None,
    kind: str | None = None,
    nbs_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Make sure every run notebook ``stem`` reads is stored, and return their records (in the
    notebook's run order; those of diverged runs included). ``namespace`` holds the notebook's
    parameters (its ``globals()``). A missing run is computed here, in this process and under
    its lock file, through :func:`compute_runs` (as the pipeline does) when ``run_missing`` (default:
    the notebook's ``run_missing`` parameter, else False) is true; otherwise
    :class:`MissingRecords` names the command that computes them. Each record is read under its
    own run's kind; ``kind`` keeps those of one kind only (the info_plane notebook reads its
    cross-entropy runs, kind "table1", beside its held-out runs, kind "info_plane")."""
    params = notebook_params(stem, namespace, nbs_dir)
    if run_missing is None:
        run_missing = bool(params.get("run_missing", False))
    missing = missing_jobs(plan_jobs({stem: params}))
    if missing and not run_missing:
        profile = params.get("profile", "default")
        folder = params.get("results_dir", "results")
        raise MissingRecords(
            f"notebook {stem!r}: {len(missing)} of the runs it reads have no record under {folder}; "
            f"compute them with `python3 -m ibcore.prefetch --profile {profile} --only {stem}` "
            "(the pipeline does it before rendering), or run the notebook with run_missing=True"
        )
    if missing:
        compute_runs({stem: params}, 1, log=log)
    jobs = [j for j in plan_jobs({stem: params})[stem] if kind is None or j.kind == kind]
    return [
        r
        for j in jobs
        for r in read_records(j.results_dir, j.kind, [j.config], require_model=j.kind == "fig3")
    ]
