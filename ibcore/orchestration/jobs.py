"""The runs of a profile: what each notebook of it reads, as jobs that can run anywhere.

The parameters of a notebook are its own defaults (the ``parameters`` cell of
``nbs/<stem>.py``, :mod:`ibcore.core.profiles`) overridden by the profile, exactly as papermill
passes them. From them each experiment module builds its configurations; a :class:`Job` is one
such run (record kind, folder, configuration), stored or not. :func:`run_job` does one run in
this process under its lock file, and stores its record.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibcore.core import profiles
from ibcore.core.profiles import check_parameter_names, notebook_defaults, notebook_source
from ibcore.core.results import config_id, project_path, read_record, record_path

#: Notebook stems whose runs this module knows how to list, by the kind of record they write.
TRAINING_STEMS = {
    "fig1_estimators": "figure1",
    "table1": "table1",
    "beta_sweep": "table1",
    "info_plane": "table1",
    "fig3_tsne": "fig3",
    "compression": "compression",
    "truth": "truth",
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
    #: what computing the run needs beside its config (the truth battery's parameters)
    context: dict = field(default_factory=dict, hash=False, compare=False)
    #: the runs of a group job (:mod:`ibcore.orchestration.groups`), trained as one batched model;
    #: empty for a single run
    members: tuple[Job, ...] = field(default=(), hash=False, compare=False)


def _train_cost(config: dict) -> float:
    """A rough relative cost of a training run, to start the longest first."""
    layers = config.get("max_layers") or (4 if config["dataset"] == "cifar10" else 3)
    per_step = (8.0 if config["dataset"] == "cifar10" else 1.0) * (1.0 if config["fraction"] < 1 else 1.2)
    if config.get("beta", 0) > 0:  # penalties with a statistics network of their own cost more
        per_step *= {"aamine": 2.5, "aamine_stopgrad": 2.0}.get(config.get("penalty", "tied"), 1.0)
    steps = config["steps"] * (layers if config["method"] == "ib" else 1)
    measure = config.get("measure_steps", 0) * layers * config.get("checkpoints", 1)
    return per_step * (steps + measure)


def _heldout_jobs(params: dict[str, Any], results_dir: str) -> list[Job]:
    """The held-out information plane's runs (``heldout`` of the info_plane parameters)."""
    if not params.get("heldout"):
        return []
    from ibcore.experiments import heldout_plane

    out = []
    for config in heldout_plane.heldout_configs(params["heldout"]):
        d = config.to_dict()
        out.append(
            Job("info_plane", heldout_plane.KIND, results_dir, d, repr(d), _train_cost(d), d["dataset"])
        )
    return out


def stem_jobs(stem: str, params: dict[str, Any]) -> list[Job]:
    """The runs notebook ``stem`` asks for with its full parameters ``params``."""
    kind = TRAINING_STEMS[stem]
    results_dir = str(project_path(params.get("results_dir", "results")))
    jobs: list[Job] = []
    if stem == "info_plane":
        jobs += _heldout_jobs(params, results_dir)
        if not params.get("measure_steps"):
            return jobs  # beyond the held-out runs, that notebook reads the beta sweep's records back
    if kind == "figure1":
        from ibcore.experiments import figure1

        names = set(inspect.signature(figure1.figure1_configs).parameters)
        configs = figure1.figure1_configs(**{k: v for k, v in params.items() if k in names})
        for c in configs:
            cost = c["steps"] * (2.0 if c["estimator"] == "aamine" else 1.0)
            source = "mnist" if c["panel"] == "a" else "synthetic"
            jobs.append(Job(stem, kind, results_dir, c, repr(c), cost, source))
        return jobs
    if kind == "truth":
        from ibcore.experiments import truth

        if not params.get("compute", True):
            return jobs  # the profile reads a stored battery back (the page says which)
        battery = truth.notebook_battery_params(params)
        for c in truth.battery_configs(battery):
            cost = float(c["estimator_params"].get("steps", 1000))
            jobs.append(Job(stem, kind, results_dir, c, repr(c), cost, truth.config_dataset(c), battery))
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


def stem_params(
    profile_name: str,
    *,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """The full parameters (notebook defaults, then the profile's entries and ``overrides``) of
    each selected notebook of a profile that has a notebook, after checking the profile's
    parameter names against the notebook's parameters cell. Raises ValueError naming the
    notebook and the parameter, :class:`ibcore.core.profiles.ProfileError` for a bad profile.
    The default ``root`` is :data:`ibcore.core.profiles.REPO_ROOT`."""
    root = Path(root) if root else profiles.REPO_ROOT
    profile = profiles.load_profile(profile_name, root / "profiles")
    out: dict[str, dict[str, Any]] = {}
    for stem in profiles.select_stems(profile, only, profile_name):
        source = notebook_source(root / "nbs", stem)
        if not source.is_file():
            continue
        defaults = notebook_defaults(source)
        if defaults:
            check_parameter_names(stem, source.relative_to(root), profile[stem], defaults)
        out[stem] = {**defaults, **profiles.notebook_parameters(profile_name, profile[stem], overrides)}
    return out


def plan_jobs(params_by_stem: Mapping[str, dict[str, Any]], profile_name: str = "") -> dict[str, list[Job]]:
    """Every run (stored or not) of each notebook, building every configuration (so a bad value
    fails here, before any work); notebooks without training runs map to an empty list. Raises
    ValueError naming the profile, the notebook and the problem."""
    plan: dict[str, list[Job]] = {}
    for stem, params in params_by_stem.items():
        try:
            plan[stem] = stem_jobs(stem, params) if stem in TRAINING_STEMS else []
        except (ValueError, TypeError) as err:
            where = f"profile {profile_name!r}, " if profile_name else ""
            raise ValueError(f"{where}notebook {stem!r}: {err}") from None
    return plan


def stem_plan(
    profile_name: str,
    *,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
) -> dict[str, list[Job]]:
    """:func:`plan_jobs` of :func:`stem_params`: every run of each selected notebook."""
    params = stem_params(profile_name, only=only, overrides=overrides, root=root)
    return plan_jobs(params, profile_name)


def is_stored(job: Job) -> bool:
    """Whether the record of ``job`` is stored and usable (bad stored state is quarantined)."""
    return read_record(job.results_dir, job.kind, job.config, require_model=job.kind == "fig3") is not None


def missing_jobs(plan: Mapping[str, Sequence[Job]], datasets: Sequence[str] | None = None) -> list[Job]:
    """The jobs of ``plan`` whose record is not stored yet (on ``datasets`` only, when given),
    without repeats (a run two notebooks read counts once), longest first."""
    jobs: dict[tuple, Job] = {}
    for stem_jobs_ in plan.values():
        for job in stem_jobs_:
            if datasets and job.dataset not in datasets:
                continue
            ident = (job.results_dir, job.kind, job.key)
            if ident not in jobs and not is_stored(job):
                jobs[ident] = job
    return sorted(jobs.values(), key=lambda j: -j.cost)


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
    return missing_jobs(stem_plan(profile_name, only=only, overrides=overrides, root=root), datasets)


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
    Raises :class:`ibcore.orchestration.locks.RunningElsewhere` when a live process holds its lock.
    (A group job runs through :func:`ibcore.orchestration.groups.run_any`.)"""
    from ibcore.core.runtime import run_settings
    from ibcore.orchestration.locks import run_lock

    start = time.perf_counter()
    with run_lock(lock_path(job)), run_settings():  # the same record in any executor
        if is_stored(job):
            return None
        if job.kind in ("figure1", "truth"):
            from ibcore.core.results import run_all
            from ibcore.experiments import figure1, truth

            runner = (
                figure1.record_runner(device, data_dir)
                if job.kind == "figure1"
                else truth.record_runner(job.context, device, data_dir)
            )
            run_all(job.results_dir, job.kind, [job.config], runner, progress=False)
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
    """``<stem> run <id> (<kind>, <dataset>)``, to name a run in messages (``<stem> group of N
    runs <id>,<id>,... (...)`` for a group job)."""
    if job.members:
        ids = ",".join(config_id(m.config) for m in job.members)
        return f"{job.stem} group of {len(job.members)} runs {ids} ({job.kind}, {job.dataset})"
    return f"{job.stem} run {config_id(job.config)} ({job.kind}, {job.dataset})"
