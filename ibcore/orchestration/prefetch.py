"""Run the training of a profile's notebooks in parallel worker processes, before the notebooks.

Every notebook of a profile trains (or reads back) its own runs; executed one after another
they use one CPU core. This module lists the runs those notebooks will ask for (the notebook's
own parameter defaults, read with :mod:`ast` from the ``parameters`` cell of ``nbs/<stem>.py``,
overridden by the profile, exactly as papermill will pass them), drops those already stored,
and runs the rest, the longest first, on Dask (:mod:`ibcore.orchestration.executor`): ``workers``
single-threaded local processes, or an existing cluster given by ``--scheduler``. Each run
writes its record atomically when it ends (and resumes from its checkpoint after an
interruption), so the notebooks then only read the records back.

Usage::

    python3 -m ibcore.prefetch --profile paper --workers 2 [--only STEM ...] [--datasets mnist]
    python3 -m ibcore.prefetch --profile paper --scheduler tcp://host:8786   # an existing Dask cluster
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibcore.core.results import config_id, project_path, read_record, record_path

#: Parameters the pipeline passes to every notebook, declared or not.
PIPELINE_PARAMS = frozenset({"profile", "results_dir"})

#: Notebook stems whose runs this module knows how to list, by the kind of record they write.
TRAINING_STEMS = {
    "fig1_estimators": "figure1",
    "table1": "table1",
    "beta_sweep": "table1",
    "info_plane": "table1",
    "fig3_tsne": "fig3",
    "compression": "compression",
}


@dataclass(frozen=True)
class Job:
    """One run a notebook would do: its record kind, folder and configuration."""

    stem: str
    kind: str
    results_dir: str
    config: dict = field(hash=False, compare=False)
    key: str = ""
    cost: float = 1.0
    dataset: str = "mnist"


_CELL = re.compile(r"^# %%(.*)$")


def parameters_cell(path: str | os.PathLike) -> str:
    """The source of the cell tagged ``parameters`` of a notebook: of a jupytext percent-format
    text source (``.py``) or of an ``.ipynb`` file; "" when it has none."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
                src = cell.get("source", "")
                return "".join(src) if isinstance(src, list) else src
        return ""
    lines: list[str] | None = None
    for line in path.read_text(encoding="utf8").splitlines():
        marker = _CELL.match(line)
        if marker:
            if lines is not None:
                break
            tags = re.search(r"tags\s*=\s*(\[[^\]]*\])", marker.group(1))
            if tags and "parameters" in ast.literal_eval(tags.group(1)):
                lines = []
        elif lines is not None:
            lines.append(line)
    return "\n".join(lines or [])


def notebook_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """The values of the parameters cell of a notebook (``name = literal`` lines, read with
    :mod:`ast`, as papermill sees them); raises ValueError for a value that is no literal."""
    out: dict[str, Any] = {}
    try:
        tree = ast.parse(parameters_cell(path))
    except SyntaxError as err:
        raise ValueError(
            f"{path}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})"
        ) from None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(
                    f"{path}: parameter {target.id} = {ast.unparse(value)} is not a literal"
                ) from None
    return out


def notebook_source(nbs_dir: Path, stem: str) -> Path:
    """``nbs_dir/<stem>.py`` (the text source) when it exists, else ``nbs_dir/<stem>.ipynb``."""
    text = nbs_dir / f"{stem}.py"
    return text if text.is_file() else nbs_dir / f"{stem}.ipynb"


def check_parameter_names(stem: str, source: str | os.PathLike, given: dict[str, Any], known) -> None:
    """Raise ValueError when the profile passes notebook ``stem`` a parameter its parameters
    cell does not declare (papermill would only warn and run with the default)."""
    known = set(known)
    unknown = sorted(set(given) - known - PIPELINE_PARAMS)
    if unknown:
        raise ValueError(
            f"notebook {stem!r} ({source}) has no parameter(s) {', '.join(unknown)}; "
            f"its parameters are: {', '.join(sorted(known))}"
        )


def _train_cost(config: dict) -> float:
    """A rough relative cost of a training run, to start the longest first."""
    layers = config.get("max_layers") or (4 if config["dataset"] == "cifar10" else 3)
    per_step = (8.0 if config["dataset"] == "cifar10" else 1.0) * (1.0 if config["fraction"] < 1 else 1.2)
    if config.get("beta", 0) > 0:  # penalties with a statistics network of their own cost more
        per_step *= {"aamine": 2.5, "aamine_stopgrad": 2.0}.get(config.get("penalty", "tied"), 1.0)
    steps = config["steps"] * (layers if config["method"] == "ib" else 1)
    measure = config.get("measure_steps", 0) * layers * config.get("checkpoints", 1)
    return per_step * (steps + measure)


def stem_jobs(stem: str, params: dict[str, Any]) -> list[Job]:
    """The runs notebook ``stem`` asks for with its full parameters ``params``."""
    kind = TRAINING_STEMS[stem]
    results_dir = str(project_path(params.get("results_dir", "results")))
    jobs: list[Job] = []
    if params.get("run_missing") is False or (stem == "info_plane" and not params.get("measure_steps")):
        return jobs  # that notebook only reads records back
    if kind == "figure1":
        from ibcore.experiments import figure1

        names = set(inspect.signature(figure1.figure1_configs).parameters)
        configs = figure1.figure1_configs(**{k: v for k, v in params.items() if k in names})
        for c in configs:
            cost = c["steps"] * (2.0 if c["estimator"] == "aamine" else 1.0)
            source = "mnist" if c["panel"] == "a" else "synthetic"
            jobs.append(Job(stem, kind, results_dir, c, repr(c), cost, source))
        return jobs
    if kind == "compression":
        from ibcore.core.results import load_records
        from ibcore.experiments import compression

        stored = load_records(results_dir, kind, statuses=("complete", "diverged"))
        for config in compression.configs_from_params(params, stored):
            d = config.to_dict()
            jobs.append(Job(stem, kind, results_dir, d, repr(d), _train_cost(d), d["dataset"]))
        return jobs
    if kind == "fig3":
        from ibcore.experiments.representation import configs_from_params
    else:
        from ibcore.experiments.table1 import configs_from_params
    configs = configs_from_params(params)
    if stem == "table1":
        from ibcore.experiments.table1 import variant_configs

        configs += variant_configs(params)
    for config in configs:
        d = config.to_dict()
        jobs.append(Job(stem, kind, results_dir, d, repr(d), _train_cost(d), d["dataset"]))
    return jobs


def stem_plan(
    profile_name: str,
    *,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
) -> dict[str, list[Job]]:
    """Every run (stored or not) of each selected notebook of a profile that has a notebook,
    after checking the profile's parameter names against the notebook's parameters cell and
    building every configuration (so a bad value fails here, before any work). Non-training
    notebooks map to an empty list. Raises ValueError naming the notebook and the parameter."""
    from ibcore.orchestration import pipeline

    root = Path(root) if root else pipeline.REPO_ROOT
    profile = pipeline.load_profile(profile_name, root / "profiles")
    plan: dict[str, list[Job]] = {}
    for stem in pipeline.select_stems(profile, only, profile_name):
        source = notebook_source(root / "nbs", stem)
        if not source.is_file():
            continue
        defaults = notebook_defaults(source)
        if defaults:
            check_parameter_names(stem, source.relative_to(root), profile[stem], defaults)
        if stem not in TRAINING_STEMS:
            plan[stem] = []
            continue
        params = {**defaults, **pipeline.notebook_parameters(profile_name, profile[stem], overrides)}
        try:
            plan[stem] = stem_jobs(stem, params)
        except (ValueError, TypeError) as err:
            raise ValueError(f"profile {profile_name!r}, notebook {stem!r}: {err}") from None
    return plan


def is_stored(job: Job) -> bool:
    """Whether the record of ``job`` is stored and usable (bad stored state is quarantined)."""
    return read_record(job.results_dir, job.kind, job.config, require_model=job.kind == "fig3") is not None


def profile_jobs(
    profile_name: str,
    *,
    only: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
) -> list[Job]:
    """The runs of the selected notebooks of a profile that have no stored record yet, without
    repeats, longest first."""
    plan = stem_plan(profile_name, only=only, overrides=overrides, root=root)
    jobs: dict[tuple, Job] = {}
    for stem_jobs_ in plan.values():
        for job in stem_jobs_:
            if datasets and job.dataset not in datasets:
                continue
            ident = (job.results_dir, job.kind, job.key)
            if ident not in jobs and not is_stored(job):
                jobs[ident] = job
    return sorted(jobs.values(), key=lambda j: -j.cost)


def check_resources(jobs: Sequence[Job], device: str | None, data_dir: str | None) -> None:
    """Check once, before any worker starts, that the device exists and the data the runs
    need can be found; raises ValueError / :class:`ibcore.core.data.DataError` naming the problem."""
    from ibcore.core.data import find_file
    from ibcore.core.runtime import resolve_device

    resolve_device(device or "auto")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(
            f"data folder {data_dir} does not exist; point --data-dir at the folder holding mnist.npz "
            "and cifar10.npz"
        )
    for name in sorted({j.dataset for j in jobs} - {"synthetic"}):
        find_file(name, data_dir)


def lock_path(job: Job) -> Path:
    """The lock file of ``job``'s run: ``<record>.lock``, beside its record."""
    path = record_path(job.results_dir, job.kind, job.config)
    return path.with_name(path.name + ".lock")


def run_job(job: Job, device: str = "auto", data_dir: str | None = None) -> float | None:
    """Run one job in this process (its record is stored when it ends); returns its seconds,
    or None when its record was already stored (by another process) once its lock was taken.
    Raises :class:`ibcore.orchestration.executor.RunningElsewhere` when a live process holds its lock."""
    from ibcore.orchestration.executor import run_lock

    start = time.perf_counter()
    with run_lock(lock_path(job)):
        if is_stored(job):
            return None
        if job.kind == "figure1":
            from ibcore.core.results import run_all
            from ibcore.experiments import figure1

            run_all(
                job.results_dir,
                job.kind,
                [job.config],
                figure1.record_runner(device, data_dir),
                progress=False,
            )
        else:
            from ibcore.core.config import TrainConfig
            from ibcore.experiments import table1

            table1.run_configs(
                [TrainConfig.from_dict(job.config)],
                job.results_dir,
                device,
                data_dir,
                kind=job.kind,
                progress=False,
                save_models=job.kind == "fig3",
            )
    return time.perf_counter() - start


def describe(job: Job) -> str:
    """``<stem> run <id> (<kind>, <dataset>)``, to name a run in messages."""
    return f"{job.stem} run {config_id(job.config)} ({job.kind}, {job.dataset})"


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    device: str = "auto",
    data_dir: str | None = None,
    log: Callable[[str], None] = print,
    *,
    scheduler: str | None = None,
    runner: Callable[..., float | None] = run_job,
) -> dict[str, Any]:
    """Run ``jobs`` on ``workers`` single-threaded Dask worker processes (in this process when
    ``workers == 1``), or on the Dask cluster at ``scheduler`` (default ``$IBCORE_SCHEDULER``),
    through :func:`ibcore.orchestration.executor.execute`: a failing run is reported and the others go on, a
    run whose worker died is retried, a run another process holds the lock of is waited for.
    ``runner(job, device, data_dir)`` does one run. Returns {"runs", "failed", "elsewhere",
    "seconds"}; raises RuntimeError listing the failed runs at the end (their finished
    neighbours are stored)."""
    from tqdm.auto import tqdm

    from ibcore.orchestration.executor import RunningElsewhere, execute, scheduler_address

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    failed: list[str] = []
    elsewhere: list[str] = []
    if not jobs:
        return {"runs": 0, "failed": failed, "elsewhere": elsewhere, "seconds": 0.0}
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
            log(f"[prefetch] {jobs[i].stem} {jobs[i].dataset} run done in {seconds:.0f} s")

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
        "runs": len(jobs),
        "failed": failed,
        "elsewhere": elsewhere,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(jobs)} runs failed (the others are stored):\n  " + "\n  ".join(failed)
        )
    return summary


#: Rounds of :func:`run_profile`: a round's stored runs may declare new ones (the compression
#: study's confirmation stage follows from its selection stage).
MAX_ROUNDS = 4


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
) -> dict[str, Any]:
    """:func:`profile_jobs` then :func:`run_jobs` (on ``workers`` local processes or the Dask
    cluster at ``scheduler``), again while the runs just stored declare new ones (at most
    :data:`MAX_ROUNDS` rounds). Returns {"runs", "failed", "seconds"}."""
    overrides = overrides or {}
    total: dict[str, Any] = {"runs": 0, "failed": [], "seconds": 0.0}
    for _ in range(MAX_ROUNDS):
        jobs = profile_jobs(profile_name, only=only, datasets=datasets, overrides=overrides, root=root)
        if not jobs:
            break
        log(f"[prefetch] profile {profile_name!r}: {len(jobs)} runs to do")
        summary = run_jobs(
            jobs,
            workers,
            overrides.get("device", "auto"),
            overrides.get("data_dir"),
            log,
            scheduler=scheduler,
        )
        total["runs"] += summary["runs"]
        total["seconds"] = round(total["seconds"] + summary["seconds"], 2)
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: one line on stderr and exit code 2 for bad input, 1 for failed runs."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(
            "[prefetch] interrupted: workers stopped; finished runs are stored, a started one resumes",
            file=sys.stderr,
        )
        return 130


def _main(argv: Sequence[str] | None = None) -> int:
    from ibcore.core.data import DataError
    from ibcore.core.results import StorageError, remove_stale_temps
    from ibcore.orchestration.executor import scheduler_address
    from ibcore.orchestration.pipeline import PipelineError

    p = argparse.ArgumentParser(prog="python3 -m ibcore.prefetch", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--only", nargs="+", metavar="STEM")
    p.add_argument(
        "--datasets", nargs="+", help="only runs on these data (mnist, cifar10, synthetic = Fig. 1b)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="run on this existing Dask cluster (default: $IBCORE_SCHEDULER, else --workers local processes)",
    )
    p.add_argument("--list", action="store_true", help="only print the runs still to do")
    args = p.parse_args(argv)
    overrides = {"device": args.device, "data_dir": args.data_dir}
    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        jobs = profile_jobs(args.profile, only=args.only, datasets=args.datasets, overrides=overrides)
        if not args.list:
            check_resources(jobs, args.device, args.data_dir)
            for folder in sorted({j.results_dir for j in jobs}):
                remove_stale_temps(folder)
    except (PipelineError, ValueError, DataError, OSError) as err:
        print(f"[prefetch] error: {err}", file=sys.stderr)
        return 2
    print(f"[prefetch] profile {args.profile!r}: {len(jobs)} runs to do")
    if args.list:
        for j in jobs:
            print(f"{j.stem:16s} {j.kind:8s} cost {j.cost:10.0f}  {j.key}")
        return 0
    try:
        summary = run_profile(
            args.profile,
            args.workers,
            only=args.only,
            datasets=args.datasets,
            overrides=overrides,
            scheduler=args.scheduler,
        )
    except (RuntimeError, StorageError) as err:
        print(f"[prefetch] error: {err}", file=sys.stderr)
        return 1
    address = scheduler_address(args.scheduler)
    where = f"on {address}" if address else f"with {args.workers} worker(s)"
    print(f"[prefetch] {summary['runs']} runs in {summary['seconds']:.0f} s {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
