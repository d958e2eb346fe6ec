"""Compute every run of a profile, then render its notebooks with papermill, then build the book.

Usage::

    python3 -m ibcore.pipeline --profile default [--only STEM ...] [--device auto]
                               [--data-dir DIR] [--workers N] [--scheduler URL] [--no-book]

A profile is ``profiles/<name>.yml`` (:mod:`ibcore.core.profiles`): a mapping from notebook stems
(``nbs/<stem>.py``, paired with ``nbs/<stem>.ipynb``), in execution order, to the parameters of
that notebook. The pipeline

1. checks everything once (:func:`preflight`): parameter names and values, device, data, folders;
2. computes every run of the profile not yet stored (:func:`compute_phase`): in this process
   (``--workers 1``), in N single-threaded Dask worker processes, or on an existing Dask cluster
   (``--scheduler tcp://host:8786``), each run under a lock file beside its record;
3. renders: executes each notebook, which only reads the records back, into
   ``book/generated/<stem>.ipynb`` (:mod:`ibcore.orchestration.render`), with the repository root
   as working directory; a stem whose notebook does not exist yet is skipped with a note. Wall
   times go to ``results/<profile>/pipeline_timings.json`` (:mod:`ibcore.orchestration.timings`);
4. builds the book, ``jupyter-book build . -W -n --keep-going`` (:mod:`ibcore.orchestration.book`;
   ``--no-book`` skips it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ibcore.core import profiles
from ibcore.core.profiles import ProfileError, notebook_parameters, select_stems
from ibcore.core.storage import remove_stale_temps, storage_error
from ibcore.orchestration.book import build_book
from ibcore.orchestration.errors import PipelineError
from ibcore.orchestration.groups import GROUPED_HELP, MAX_GROUP
from ibcore.orchestration.render import execute_notebook
from ibcore.orchestration.timings import (
    RUN_INFO_NAME,
    TIMINGS_NAME,
    _now,
    _run_counts,
    read_timings,
    save_timings_quietly,
    write_run_info,
    write_timings,
)
from ibcore.report.notebooks import paired_notebook

REPO_ROOT = profiles.REPO_ROOT
PROFILES_DIR = profiles.PROFILES_DIR
NBS_DIR = REPO_ROOT / "nbs"
OUT_DIR = REPO_ROOT / "book" / "generated"


def load_profile(name: str, profiles_dir: str | os.PathLike = PROFILES_DIR) -> dict[str, dict[str, Any]]:
    """:func:`ibcore.core.profiles.load_profile`, raising :class:`PipelineError`."""
    try:
        return profiles.load_profile(name, profiles_dir)
    except ProfileError as err:
        raise PipelineError(str(err)) from None


def run_notebooks(
    profile_name: str,
    *,
    only: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    root: Path = REPO_ROOT,
    profiles_dir: Path | None = None,
    nbs_dir: Path | None = None,
    out_dir: Path | None = None,
    results_dir: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    training: dict[str, Any] | None = None,
    plan: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Execute the notebooks of a profile; returns the timings written to
    ``<results_dir>/pipeline_timings.json`` (``results_dir`` defaults to ``results/<profile>``).

    Entries of notebooks not run this time are kept from the previous timings file, so that
    ``--only`` runs update the table instead of replacing it. ``plan`` is :func:`preflight`'s
    answer (computed here when None): parameters, device, data and folders are checked before
    the first notebook starts. ``book/generated/run_info.md`` is rewritten only when every
    notebook of the profile was executed.
    """
    root = Path(root)
    profiles_dir = Path(profiles_dir) if profiles_dir else root / "profiles"
    nbs_dir = Path(nbs_dir) if nbs_dir else root / "nbs"
    out_dir = Path(out_dir) if out_dir else root / "book" / "generated"
    results_dir = Path(results_dir) if results_dir else root / "results" / profile_name
    profile = load_profile(profile_name, profiles_dir)
    stems = select_stems(profile, only, profile_name)
    if plan is None:
        plan = preflight(profile_name, only, overrides, root, [results_dir, out_dir], log)

    timings_path = results_dir / TIMINGS_NAME
    previous = read_timings(timings_path)
    notebooks = previous.get("notebooks", {}) if previous.get("profile") == profile_name else {}
    timings: dict[str, Any] = {
        "profile": profile_name,
        "started": _now(),
        "finished": None,
        "status": "running",
        "stems": stems,
        "overrides": {k: v for k, v in (overrides or {}).items() if v is not None},
        "notebooks": notebooks,
        "notebooks_s": None,
        "training": training or {"workers": 1, "seconds": 0.0, "runs": 0},
        "book_s": None,
        "total_s": None,
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    start = time.perf_counter()
    ok = False
    try:
        for k, stem in enumerate(stems, 1):
            source = paired_notebook(nbs_dir, stem)
            if not source.is_file():
                log(f"[pipeline] note: {source} does not exist yet; skipping {stem!r}")
                notebooks[stem] = {"status": "skipped (no notebook)", "seconds": None, "finished": _now()}
                continue
            params = notebook_parameters(profile_name, profile[stem], overrides)
            log(f"[pipeline] ({k}/{len(stems)}) {source} -> {out_dir / (stem + '.ipynb')} with {params}")
            try:
                seconds = execute_notebook(source, out_dir / f"{stem}.ipynb", params, root, progress)
            except PipelineError:
                notebooks[stem] = {"status": "failed", "seconds": None, "finished": _now()}
                raise
            notebooks[stem] = {
                "status": "executed",
                "seconds": round(seconds, 2),
                "finished": _now(),
                **_run_counts(plan.get(stem)),
            }
            log(f"[pipeline] {stem} done in {seconds:.1f} s")
            write_timings(timings_path, {**timings, "notebooks_s": round(time.perf_counter() - start, 2)})
        timings["status"] = "notebooks done"
        not_run = [s for s in profile if s not in stems or notebooks.get(s, {}).get("status") != "executed"]
        if not_run:
            log(
                f"[pipeline] note: {out_dir / RUN_INFO_NAME} is left as it was: this build did not execute "
                f"every notebook of profile {profile_name!r} (not executed: {', '.join(not_run)})"
            )
        else:
            write_run_info(
                out_dir / RUN_INFO_NAME, {**timings, "notebooks_s": round(time.perf_counter() - start, 2)}
            )
        ok = True
    except BaseException:
        timings["status"] = "failed"
        raise
    finally:
        timings["notebooks_s"] = round(time.perf_counter() - start, 2)
        timings["total_s"] = timings["notebooks_s"]
        timings["finished"] = _now()
        save_timings_quietly(timings_path, timings, raise_errors=ok, log=log)
    return timings


def check_writable(folder: Path) -> None:
    """Raise :class:`PipelineError` naming ``folder`` and the fix when files cannot be created
    in it (read-only, full or not a folder)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise PipelineError(str(storage_error(folder, err))) from None


def preflight(
    profile_name: str,
    only: Sequence[str] | None,
    overrides: dict[str, Any] | None,
    root: Path,
    folders: Sequence[Path] = (),
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, int]]:
    """Everything checked once, before any notebook or worker starts: the profile's parameter
    names and values (every configuration is built), the device, the data the missing runs
    need, and that the output folders (``folders`` and the records' folders) are writable.
    Stale temporary files of killed runs are removed. Returns, per notebook with training
    runs, ``{"runs": n, "to_compute": m}`` (m not yet stored; a run shared with an earlier
    notebook counts for that one). Raises :class:`PipelineError` with one line naming the
    problem."""
    from ibcore.core.data import DataError
    from ibcore.orchestration import jobs as jobs_

    overrides = overrides or {}
    try:
        stems = jobs_.stem_plan(profile_name, only=only, overrides=overrides, root=root)
        counts: dict[str, dict[str, int]] = {}
        seen: set[tuple] = set()
        to_do: list = []
        for stem, jobs in stems.items():
            if stem not in jobs_.TRAINING_STEMS:
                continue
            new = 0
            for job in jobs:
                ident = (job.results_dir, job.kind, job.key)
                if ident in seen:
                    continue
                seen.add(ident)
                if not jobs_.is_stored(job):
                    new += 1
                    to_do.append(job)
            counts[stem] = {"runs": len(jobs), "to_compute": new}
        jobs_.check_resources(to_do, overrides.get("device"), overrides.get("data_dir"))
    except ProfileError as err:
        raise PipelineError(str(err)) from None
    except (ValueError, DataError, FileNotFoundError) as err:
        raise PipelineError(str(err)) from None
    results_dirs = {Path(job.results_dir) for jobs in stems.values() for job in jobs}
    for folder in [*folders, *sorted(results_dirs)]:
        check_writable(folder)
        for stale in remove_stale_temps(folder):
            log(f"[pipeline] removed the stale temporary file {stale} of an interrupted run")
    return counts


# -- compute, then render ----------------------------------------------------------------


def compute_phase(
    profile_name: str,
    only: Sequence[str] | None,
    overrides: dict[str, Any],
    root: Path,
    workers: int,
    log: Callable[[str], None] = print,
    scheduler: str | None = None,
    grouped: bool = False,
    max_group: int = MAX_GROUP,
) -> dict[str, Any]:
    """Compute every run of the profile's notebooks not yet stored, before any notebook runs
    (:func:`ibcore.orchestration.compute.run_profile`): in this process (``workers == 1``), in
    ``workers`` local Dask processes, or on the cluster at ``scheduler``; each run under its lock
    file (``grouped``: in group jobs of ``max_group`` runs). A failed run raises PipelineError."""
    from ibcore.orchestration import compute

    where = (
        f"on the Dask cluster at {scheduler}"
        if scheduler
        else (f"in {workers} worker processes" if workers > 1 else "in this process")
    )
    log(f"[pipeline] computing the runs not stored yet, {where}")
    try:
        summary = compute.run_profile(
            profile_name,
            workers,
            only=only,
            overrides=overrides,
            root=root,
            log=log,
            scheduler=scheduler,
            grouped=grouped,
            max_group=max_group,
        )
    except ValueError as err:
        raise PipelineError(str(err)) from None
    except RuntimeError as err:
        raise PipelineError(str(err)) from err
    log(f"[pipeline] {summary['runs']} runs computed in {summary['seconds']:.1f} s")
    return {"seconds": summary["seconds"], "runs": summary["runs"]}


# -- command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 -m ibcore.pipeline",
        description="Execute the notebooks of a profile with papermill into book/generated/, "
        "record their wall times, then build the book.",
    )
    parser.add_argument("--profile", default="default", help="profiles/<name>.yml (default: default)")
    parser.add_argument("--only", nargs="+", metavar="STEM", help="run only these notebooks of the profile")
    parser.add_argument(
        "--device", help="passed to every notebook as the `device` parameter (auto, cpu, cuda)"
    )
    parser.add_argument("--data-dir", help="passed to every notebook as the `data_dir` parameter")
    parser.add_argument(
        "--no-book", action="store_true", help="execute the notebooks but do not build the book"
    )
    parser.add_argument("--no-progress", action="store_true", help="no papermill progress bars")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="compute the runs in N single-threaded processes (1: in this process), before the notebooks",
    )
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="compute the runs on this existing Dask cluster (default: $IBCORE_SCHEDULER)",
    )
    parser.add_argument("--grouped", action="store_true", help=GROUPED_HELP)
    parser.add_argument("--max-group", type=int, default=MAX_GROUP, metavar="N", help="largest group")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, root: Path = REPO_ROOT) -> int:
    """The command line; ``root`` is the repository (a different one in tests)."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.device is not None:
        overrides["device"] = args.device
    if args.data_dir is not None:
        overrides["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    for flag, value in (("--workers", args.workers), ("--max-group", args.max_group)):
        if value < 1:
            print(f"[pipeline] error: {flag} must be >= 1, got {value}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    # the notebooks' provenance banners count records written after this moment as trained in
    # this build (ibcore.report.pages.stored_run_ids), also those the training workers stored
    os.environ.setdefault("IBCORE_BUILD_STARTED", str(time.time()))
    training: dict[str, Any] = {"workers": args.workers, "seconds": 0.0, "runs": 0}
    try:
        plan = preflight(
            args.profile,
            args.only,
            overrides,
            root,
            [root / "results" / args.profile, root / "book" / "generated"],
        )
        scheduler = args.scheduler or os.environ.get("IBCORE_SCHEDULER") or None
        # compute first (every run of the profile, under its lock), then render: the notebooks
        # only read the records back
        training.update(
            compute_phase(
                args.profile,
                args.only,
                overrides,
                root,
                args.workers,
                scheduler=scheduler,
                grouped=args.grouped,
                max_group=args.max_group,
            )
        )
        timings = run_notebooks(
            args.profile,
            only=args.only,
            overrides=overrides,
            root=root,
            progress=not args.no_progress,
            training=training,
            plan=plan,
        )
    except (ProfileError, OSError) as err:
        # ProfileError: also PipelineError; OSError: a StorageError naming the file and the fix
        print(f"[pipeline] error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "[pipeline] interrupted: workers stopped; finished runs and executed notebooks are kept, "
            "a started run resumes",
            file=sys.stderr,
        )
        return 130
    code = 0
    if not args.no_book:
        try:
            timings["book_s"] = round(build_book(root), 2)
            timings["status"] = "complete"
        except PipelineError as err:
            print(f"[pipeline] error: {err}", file=sys.stderr)
            timings["status"] = "book failed"
            code = 1
    timings["total_s"] = round(time.perf_counter() - start, 2)
    timings["finished"] = _now()
    try:
        save_timings_quietly(root / "results" / args.profile / TIMINGS_NAME, timings, raise_errors=not code)
    except PipelineError as err:
        print(f"[pipeline] error: {err}", file=sys.stderr)
        return 1
    if code:
        return code
    print(f"[pipeline] profile {args.profile!r} finished in {timings['total_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
