"""The wall times of a pipeline run: ``results/<profile>/pipeline_timings.json`` (machine
readable, kept across ``--only`` runs) and ``book/generated/run_info.md`` (the book's summary of
the build that produced it)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ibcore.core.storage import atomic_write_bytes
from ibcore.orchestration.errors import PipelineError

TIMINGS_NAME = "pipeline_timings.json"
RUN_INFO_NAME = "run_info.md"


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


def _training_line(training: dict[str, Any]) -> str:
    """What the compute phase did before the notebooks ran (they only read records back)."""
    runs, workers = training.get("runs", 0), training.get("workers", 1)
    if not runs:
        return "Every run was already stored: the notebooks read the records back, nothing was trained."
    where = "in the pipeline's process" if workers == 1 else f"by {workers} single-threaded worker processes"
    return (
        f"Before them, the {runs} runs not yet stored were computed in {training.get('seconds', 0):.0f} s "
        f"{where} (`--workers`); the notebooks read them back."
    )


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
        _training_line(timings.get("training") or {}),
        "",
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
