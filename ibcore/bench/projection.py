"""The wall time of a whole profile, projected from its stored runs' own timings (issue 14).

Every run of a profile (the pipeline's plan: each notebook's runs, a run two notebooks read
counted once) is looked up among the stored records; the seconds each record measured for
itself (training and probes, or the estimate, or the known-truth battery's wall time) are
summed per kind, and the runs are packed onto ``workers`` processes longest first, as the
executor starts them, to give the projected wall time of computing them all. The projection
leaves out what runs between the training runs (the notebooks and the book: see the pipeline's
timings) and the wait of the compression study's later stages for its first (they start only
once stage 1's records exist). A record's seconds are those of the machine and load it ran on:
``devices`` lists them, and runs stored under heavier load inflate the total.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from ibcore.bench.machine import _utc_now
from ibcore.core.results import read_record
from ibcore.orchestration.jobs import stem_plan

PROJECTION_KIND = "bench_projection"
#: the keys under a record's ``timings`` holding its own seconds, by preference
SECONDS_KEYS = ("train_seconds", "total_s", "wall", "seconds")


def record_seconds(record: dict[str, Any]) -> float | None:
    """The seconds a stored run measured for itself, or None when it holds none."""
    timings = record.get("timings") or {}
    for key in SECONDS_KEYS:
        value = timings.get(key)
        if isinstance(value, (int, float)) and value >= 0:
            return float(value)
    return None


def packed_wall(seconds: Sequence[float], workers: int) -> float:
    """The finish time of ``seconds`` packed longest first onto ``workers`` processes, each run
    going to the first process free."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def project_profile(
    profile: str,
    workers: int,
    exclude_datasets: Sequence[str] = (),
    root=None,
) -> dict[str, Any]:
    """The projection record of ``profile`` on ``workers`` processes, without the runs on
    ``exclude_datasets`` (e.g. ``["cifar10"]``); raises ValueError for a profile whose runs are
    not all stored (the projection would leave them out silently)."""
    jobs: dict[tuple, Any] = {}
    for stem_jobs in stem_plan(profile, root=root).values():
        for job in stem_jobs:
            if job.dataset not in exclude_datasets:
                jobs.setdefault((job.results_dir, job.kind, job.key), job)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    seconds: list[float] = []
    devices: dict[str, int] = {}
    missing: list[str] = []
    for job in jobs.values():
        record = read_record(job.results_dir, job.kind, job.config)
        s = None if record is None else record_seconds(record)
        if s is None:
            missing.append(f"{job.kind}/{job.key[:60]}")
            continue
        device = (record.get("environment") or {}).get("device", "unknown")
        devices[device] = devices.get(device, 0) + 1
        row = rows.setdefault(
            (job.kind, job.dataset), {"kind": job.kind, "dataset": job.dataset, "runs": 0, "seconds": 0.0}
        )
        row["runs"] += 1
        row["seconds"] += s
        seconds.append(s)
    if missing:
        raise ValueError(
            f"profile {profile!r}: {len(missing)} run(s) have no stored record with timings "
            f"(first: {missing[0]}); compute them first (python3 -m ibcore.prefetch --profile {profile})"
        )
    return {
        "kind": PROJECTION_KIND,
        "date": _utc_now(),
        "profile": profile,
        "workers": workers,
        "excluded_datasets": list(exclude_datasets),
        "runs": len(seconds),
        "run_seconds": round(sum(seconds), 1),
        "longest_run_s": round(max(seconds, default=0.0), 1),
        "projected_wall_s": round(packed_wall(seconds, workers), 1),
        "devices": devices,
        "by_kind": [
            {**r, "seconds": round(r["seconds"], 1)}
            for r in sorted(rows.values(), key=lambda r: -r["seconds"])
        ],
    }
