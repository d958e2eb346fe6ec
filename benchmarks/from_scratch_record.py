"""The record of a from-scratch build of a profile, for the performance page (issue 14).

The build runs in a fresh clone whose run records are removed except those of the data sets
left out (CIFAR-10 here), as ``python3 -m ibcore.pipeline --profile paper --workers 2``. When the
pipeline finished, its own ``results/<profile>/pipeline_timings.json`` is the record (the commit
and the number of runs added). When it was stopped, the record says so: the minutes until the
stop, the runs stored by then (records written after the start) out of the profile's runs on
the other data sets, as this repository's stored records plan them, and the seconds this
repository's records of the unfinished runs measured for themselves. A build stopped and then
resumed (the pipeline redoes no stored run) is recorded once it finishes, with ``--previous-s``
the seconds of the earlier sitting. Run from the repository root:

    python3 benchmarks/from_scratch_record.py CLONE --started 2026-11-29T03:55:13 \
        [--stopped 2026-11-29T05:40:00] [--exclude cifar10] [--out FILE]

(``--out`` default: ``results/bench/paper_mnist_from_scratch_timings.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ibcore.core.results import atomic_write_bytes  # noqa: E402


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


#: the kinds of training and estimation runs a profile computes (the truth battery is read only)
RUN_KINDS = ("table1", "compression", "info_plane", "fig3", "figure1")


def unfinished(clone: Path, profile: str, exclude: list[str]) -> tuple[int, int, float]:
    """(runs planned, runs the clone has not stored, the seconds this repository's stored records
    of those runs measured for themselves): the profile's runs on the data sets not excluded, as
    this repository plans them (the compression study's later stages follow its stored first
    stage). Run from the repository root."""
    from ibcore.bench.projection import record_seconds
    from ibcore.core.results import read_record, record_path
    from ibcore.orchestration.jobs import stem_plan

    jobs = {}
    for stem_jobs in stem_plan(profile).values():
        for job in stem_jobs:
            if job.dataset not in exclude:
                jobs.setdefault((job.results_dir, job.kind, job.key), job)
    missing, seconds = 0, 0.0
    for job in jobs.values():
        path = Path(record_path(job.results_dir, job.kind, job.config)).resolve()
        if not (clone / path.relative_to(ROOT)).is_file():
            missing += 1
            stored = read_record(job.results_dir, job.kind, job.config)
            seconds += (record_seconds(stored) or 0.0) if stored else 0.0
    return len(jobs), missing, seconds


def build_records(results: Path, started: datetime) -> list[dict]:
    """The run records of the build: training and estimation records written after it started."""
    out = []
    for f in results.glob("*/*.json"):
        if f.name.count(".") != 1 or f.stat().st_mtime < started.timestamp():
            continue
        try:
            run = json.loads(f.read_text())
        except ValueError:
            continue
        if run.get("kind") in RUN_KINDS:
            out.append(run)
    return out


def libraries_used(results: Path, started: datetime) -> list[str]:
    """The CPU matmul libraries the build's own run records name (``environment.cpu_matmul``;
    "mkl" for a record from before :mod:`ibcore.core.cpu_matmul`, which names none)."""
    return sorted(
        {
            run["environment"].get("cpu_matmul", "mkl")
            for run in build_records(results, started)
            if (run.get("environment") or {}).get("device") == "cpu"
        }
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clone", type=Path)
    p.add_argument("--profile", default="paper")
    p.add_argument("--started", required=True, help="UTC time the build started (ISO 8601)")
    p.add_argument("--stopped", help="UTC time the build was stopped, when it did not finish")
    p.add_argument("--exclude", nargs="*", default=["cifar10"])
    p.add_argument(
        "--previous-s", type=float, default=0.0,
        help="seconds of earlier sittings of the same build (stopped, then resumed): added to the total",
    )  # fmt: skip
    p.add_argument("--note", default="")
    p.add_argument(
        "--out", type=Path, default=ROOT / "results" / "bench" / "paper_mnist_from_scratch_timings.json"
    )
    args = p.parse_args(argv)
    results = args.clone / "results" / args.profile
    commit = subprocess.run(
        ["git", "-C", str(args.clone), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    started = _utc(args.started)
    if args.stopped is None:
        record = json.loads((results / "pipeline_timings.json").read_text())
        if record.get("status") != "complete":
            print(
                f"error: the pipeline's timings say {record.get('status')!r}; give --stopped", file=sys.stderr
            )
            return 2
    else:
        stopped = _utc(args.stopped)
        stored = [
            run
            for run in build_records(results, started)
            if (run.get("config") or {}).get("dataset") not in args.exclude
        ]
        planned, missing, missing_s = unfinished(args.clone, args.profile, args.exclude)
        record = {
            "profile": args.profile,
            "status": "stopped",
            "started": started.isoformat(timespec="seconds"),
            "finished": stopped.isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count()},
            "training": {"runs": len(stored), "planned": planned, "workers": 2},
            "unfinished": {"runs": missing, "stored_seconds": round(missing_s, 1)},
            "notebooks_s": None,
            "book_s": None,
            "total_s": round((stopped - started).total_seconds(), 1),
        }
    if args.previous_s:
        last = record["total_s"]
        record["sittings_s"] = [round(args.previous_s, 1), round(last, 1)]
        record["total_s"] = round(args.previous_s + last, 1)
    record |= {
        "commit": commit,
        "excluded_datasets": args.exclude,
        "cpu_matmul": libraries_used(results, started),
        "note": args.note,
    }
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    print(json.dumps({k: v for k, v in record.items() if k != "notebooks"}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
