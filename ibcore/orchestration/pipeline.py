"""Run the notebooks of a profile with papermill, time them, then build the book.

Usage::

    python3 -m ibcore.pipeline --profile default [--only STEM ...] [--device auto]
                               [--data-dir DIR] [--workers N] [--scheduler URL] [--no-book]

A profile is ``profiles/<name>.yml``: a mapping from notebook stems (``nbs/<stem>.ipynb``), in
execution order, to the papermill parameters of that notebook. Each notebook is executed into
``book/generated/<stem>.ipynb`` (through a temporary file and a rename, so a crash never leaves
a half-written page), with the repository root as working directory. Wall times go to
``results/<profile>/pipeline_timings.json``. A stem whose notebook does not exist yet is skipped
with a note. Finally ``jupyter-book build . -W -n --keep-going`` builds the book (``--no-book``
skips it). With ``--workers N`` (N > 1) the training runs of the notebooks are done first,
in N single-threaded Dask worker processes (:mod:`ibcore.orchestration.prefetch`,
:mod:`ibcore.orchestration.executor`), or
with ``--scheduler tcp://host:8786`` on an existing Dask cluster, so the notebooks only read
them back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ibcore.core.results import atomic_write_bytes, remove_stale_temps, storage_error
from ibcore.report.notebooks import paired_notebook

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "profiles"
NBS_DIR = REPO_ROOT / "nbs"
OUT_DIR = REPO_ROOT / "book" / "generated"
TIMINGS_NAME = "pipeline_timings.json"
RUN_INFO_NAME = "run_info.md"
BOOK_COMMAND = ("build", ".", "-W", "-n", "--keep-going")
KERNEL_NAME = "python3"


class PipelineError(RuntimeError):
    """A profile, notebook or book build problem, with a message meant for the user."""


# -- profiles ------------------------------------------------------------------------------


def available_profiles(profiles_dir: str | os.PathLike = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``profiles_dir`` (files ``<name>.yml``), sorted."""
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yml") if p.is_file())


def load_profile(name: str, profiles_dir: str | os.PathLike = PROFILES_DIR) -> dict[str, dict[str, Any]]:
    """The notebooks of profile ``name``: an ordered ``{stem: papermill parameters}``.

    An unknown profile raises :class:`PipelineError` naming the available ones; a malformed
    file raises it naming the file and the offending entry.
    """
    profiles_dir = Path(profiles_dir)
    path = profiles_dir / f"{name}.yml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        known = ", ".join(available_profiles(profiles_dir)) or "(none)"
        raise PipelineError(
            f"unknown profile {name!r}; available profiles: {known} (files {profiles_dir}/<name>.yml)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf8"))
    except yaml.YAMLError as err:
        raise PipelineError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict) or not data:
        raise PipelineError(f"{path} must map notebook stems to parameter dicts, got {type(data).__name__}")
    profile: dict[str, dict[str, Any]] = {}
    for stem, params in data.items():
        if not isinstance(stem, str) or not stem or "/" in stem or stem.endswith(".ipynb"):
            raise PipelineError(
                f"{path}: {stem!r} is not a notebook stem (write fig1_estimators, not a path)"
            )
        if params is None:
            params = {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise PipelineError(f"{path}: the parameters of {stem!r} must be a mapping name -> value")
        profile[stem] = dict(params)
    return profile


def notebook_parameters(
    profile_name: str, params: dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Parameters passed to one notebook: ``profile`` and ``results_dir`` (defaults), the
    profile's own entries, then the command-line ``overrides`` (device, data_dir)."""
    out: dict[str, Any] = {"profile": profile_name, "results_dir": f"results/{profile_name}"}
    out.update(params)
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return out


def select_stems(
    profile: dict[str, dict[str, Any]], only: Sequence[str] | None, profile_name: str
) -> list[str]:
    """Stems to run, in profile order; ``only`` restricts them and must name profile stems."""
    if not only:
        return list(profile)
    unknown = [s for s in only if s not in profile]
    if unknown:
        raise PipelineError(
            f"--only {' '.join(unknown)}: not in profile {profile_name!r}, whose notebooks are "
            f"{', '.join(profile)}"
        )
    return [s for s in profile if s in set(only)]


# -- timings -------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def read_timings(path: Path) -> dict[str, Any]:
    """The timings file at ``path``, or an empty one when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _make_readable(path: Path) -> None:
    """Give a file made by ``mkstemp`` (mode 0600) the usual 0644 permissions."""
    os.chmod(path, 0o644)


def write_timings(path: Path, timings: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(timings, indent=1, sort_keys=True) + "\n").encode())
    _make_readable(path)


def write_run_info(path: Path, timings: dict[str, Any]) -> None:
    """A Markdown summary of the run (profile, date, wall times) that the book's intro includes."""
    name = timings["profile"]
    overrides = timings.get("overrides") or {}
    started = str(timings.get("started"))[:16].replace("T", " ")
    lines = [
        f"This build was produced with the **`{name}`** profile (`profiles/{name}.yml`, records under "
        f"`results/{name}/`); its notebooks were executed on {started} "
        f"UTC in {timings.get('notebooks_s', 0):.0f} s of wall time "
        f"(Python {timings['host']['python']}, {timings['host']['cpus']} CPU cores"
        + (f", device parameter `{overrides['device']}`" if "device" in overrides else "")
        + ").",
        "",
        *(
            [
                f"Before them, {training['runs']} training runs not yet stored were done in "
                f"{training['seconds']:.0f} s by {training['workers']} single-threaded worker processes "
                "(`--workers`); the notebooks read them back.",
                "",
            ]
            if (training := timings.get("training") or {}).get("workers", 1) > 1
            else []
        ),
        "| notebook | status | training runs | wall time (s) |",
        "|---|---|---|---:|",
    ]
    for stem, entry in timings.get("notebooks", {}).items():
        secs = entry.get("seconds")
        computed, read_back = entry.get("computed"), entry.get("read_back")
        runs = "no training runs" if computed is None else f"{computed} computed, {read_back} read back"
        lines.append(
            f"| `{stem}` | {entry.get('status')} | {runs} | {'' if secs is None else f'{secs:.1f}'} |"
        )
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    _make_readable(path)


# -- notebooks -----------------------------------------------------------------------------


def _execute(
    input_path: Path, output_path: Path, parameters: dict[str, Any], cwd: Path, progress: bool
) -> None:
    import papermill

    papermill.execute_notebook(
        str(input_path),
        str(output_path),
        parameters=parameters,
        kernel_name=KERNEL_NAME,
        progress_bar=progress,
        cwd=str(cwd),
    )


#: Tags of the cells papermill reads or writes the parameters in; the book does not show them.
PARAMETER_TAGS = ("parameters", "injected-parameters")


def hide_parameter_cells(path: Path) -> int:
    """Tag the parameter cells of the executed notebook ``path`` ``remove-cell`` (papermill's
    injected cell carries only its own tag); returns how many cells were tagged."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in PARAMETER_TAGS) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            changed += 1
    if changed:
        nbformat.write(nb, path)
    return changed


def execute_notebook(
    input_path: Path,
    output_path: Path,
    parameters: dict[str, Any],
    cwd: Path,
    progress: bool = True,
) -> float:
    """Execute ``input_path`` into ``output_path`` atomically; returns the wall time in seconds.

    papermill writes a temporary file beside ``output_path``, renamed over it on success. On an
    error the previous ``output_path`` stays as it was, the failed notebook is kept as
    ``<stem>.failed.ipynb`` for inspection, and :class:`PipelineError` names the notebook and
    the failing cell.
    """
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=output_path.parent, prefix=f".{output_path.stem}.", suffix=".tmp.ipynb"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    failed = output_path.with_name(f"{output_path.stem}.failed.ipynb")
    start = time.perf_counter()
    try:
        _execute(input_path, tmp, parameters, cwd, progress)
    except PapermillExecutionError as err:
        try:
            if tmp.is_file() and tmp.stat().st_size:
                os.replace(tmp, failed)
        except OSError:  # cleanup must never mask the notebook's own error
            failed = tmp
        where = f"cell {err.cell_index} of the executed notebook" + (
            f" (In [{err.exec_count}])" if err.exec_count else ""
        )
        source = "\n".join("    " + line for line in str(err.source).strip().splitlines()[:8])
        raise PipelineError(
            f"notebook {input_path} failed in {where}: {err.ename}: {err.evalue}\n"
            f"  cell source:\n{source}\n"
            f"  the executed notebook with the traceback is {failed}"
        ) from err
    except DeadKernelError:
        raise PipelineError(
            f"the kernel executing notebook {input_path} died (killed, e.g. out of memory, or crashed); "
            "the runs it finished are stored: rerun to resume, with fewer --workers or a smaller profile "
            "if memory ran out"
        ) from None
    else:
        hide_parameter_cells(tmp)
        _make_readable(tmp)
        os.replace(tmp, output_path)
        failed.unlink(missing_ok=True)
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return time.perf_counter() - start


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


def _run_counts(counts: dict[str, int] | None) -> dict[str, Any]:
    """The ``computed``/``read_back`` entries of a notebook's timings (None: no training runs)."""
    if counts is None:
        return {"computed": None, "read_back": None}
    return {"computed": counts["to_compute"], "read_back": counts["runs"] - counts["to_compute"]}


def save_timings_quietly(
    path: Path, timings: dict[str, Any], raise_errors: bool, log: Callable[[str], None] = print
) -> None:
    """Write the timings file; when an earlier error is already on its way (``raise_errors``
    False) a failure here is only noted in one line, so that it never masks the first error."""
    try:
        write_timings(path, timings)
    except OSError as err:
        if raise_errors:
            raise PipelineError(str(err)) from None
        log(f"[pipeline] note: the timings were not saved ({err})")


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
    from ibcore.orchestration import prefetch

    overrides = overrides or {}
    try:
        stems = prefetch.stem_plan(profile_name, only=only, overrides=overrides, root=root)
        counts: dict[str, dict[str, int]] = {}
        seen: set[tuple] = set()
        to_do: list = []
        for stem, jobs in stems.items():
            if stem not in prefetch.TRAINING_STEMS:
                continue
            new = 0
            for job in jobs:
                ident = (job.results_dir, job.kind, job.key)
                if ident in seen:
                    continue
                seen.add(ident)
                if not prefetch.is_stored(job):
                    new += 1
                    to_do.append(job)
            counts[stem] = {"runs": len(jobs), "to_compute": new}
        prefetch.check_resources(to_do, overrides.get("device"), overrides.get("data_dir"))
    except (ValueError, DataError, FileNotFoundError) as err:
        raise PipelineError(str(err)) from None
    results_dirs = {Path(job.results_dir) for jobs in stems.values() for job in jobs}
    for folder in [*folders, *sorted(results_dirs)]:
        check_writable(folder)
        for stale in remove_stale_temps(folder):
            log(f"[pipeline] removed the stale temporary file {stale} of an interrupted run")
    return counts


# -- book ----------------------------------------------------------------------------------


def toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Every ``root:``/``file:`` entry of ``_toc.yml`` (paths without suffix), in order."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf8")) or {}
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def missing_toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Entries of ``_toc.yml`` with no ``.md``/``.ipynb`` file (e.g. a page not generated yet)."""
    root = Path(root)
    return [
        f
        for f in toc_files(root)
        if not any((root / f"{Path(f).with_suffix('')}{ext}").is_file() for ext in (".md", ".ipynb"))
        and not (root / f).is_file()
    ]


def build_book(root: Path = REPO_ROOT, log: Callable[[str], None] = print) -> float:
    """``jupyter-book build . -W -n --keep-going`` in ``root``; returns the wall time."""
    missing = missing_toc_files(root)
    if missing:
        hints = [
            f"{m} (run the notebook nbs/{Path(m).name}.ipynb through the pipeline first)"
            if Path(m).parent.as_posix() == "book/generated"
            else m
            for m in missing
        ]
        raise PipelineError("_toc.yml lists pages that do not exist:\n  " + "\n  ".join(hints))
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]
    cmd += list(BOOK_COMMAND)
    log(f"[pipeline] building the book: jupyter-book {' '.join(BOOK_COMMAND)} (in {root})")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise PipelineError(
            f"the book build failed (exit code {proc.returncode}); warnings count as errors (-W -n), "
            "see the messages above"
        )
    log(f"[pipeline] book built in {seconds:.1f} s: {root / '_build' / 'html' / 'index.html'}")
    return seconds


# -- parallel training ---------------------------------------------------------------------


def train_in_parallel(
    profile_name: str,
    only: Sequence[str] | None,
    overrides: dict[str, Any],
    root: Path,
    workers: int,
    log: Callable[[str], None] = print,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Run the training runs of the profile's notebooks not yet stored on Dask: ``workers``
    local processes, or the cluster at ``scheduler`` (:func:`ibcore.orchestration.prefetch.run_jobs`); a
    failed run raises :class:`PipelineError` after the others have finished and been stored."""
    from ibcore.orchestration import prefetch

    where = f"on the Dask cluster at {scheduler}" if scheduler else f"in {workers} worker processes"
    log(f"[pipeline] training runs not stored yet, {where}")
    try:
        summary = prefetch.run_profile(
            profile_name, workers, only=only, overrides=overrides, root=root, log=log, scheduler=scheduler
        )
    except ValueError as err:
        raise PipelineError(str(err)) from None
    except RuntimeError as err:
        raise PipelineError(str(err)) from err
    log(f"[pipeline] training done in {summary['seconds']:.1f} s")
    return {"seconds": summary["seconds"], "runs": summary["runs"]}


# -- command line --------------------------------------------------------------------------


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
        help="N > 1: first run the notebooks' training runs in N single-threaded processes",
    )
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="first run the notebooks' training runs on this existing Dask cluster "
        "(default: $IBCORE_SCHEDULER)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, root: Path = REPO_ROOT) -> int:
    """The command line; ``root`` is the repository (a different one in tests)."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.device is not None:
        overrides["device"] = args.device
    if args.data_dir is not None:
        overrides["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    if args.workers < 1:
        print(f"[pipeline] error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
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
        if args.workers > 1 or scheduler:
            training.update(
                train_in_parallel(args.profile, args.only, overrides, root, args.workers, scheduler=scheduler)
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
    except (PipelineError, OSError) as err:  # OSError: a StorageError naming the file and the fix
        print(f"[pipeline] error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[pipeline] interrupted; the notebooks already executed are kept", file=sys.stderr)
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
