"""``python3 -m ibcore.prefetch``: compute the runs of a profile's notebooks, before rendering.

It lists the runs the selected notebooks of a profile read (their parameters: each notebook's
``parameters`` cell overridden by the profile, as papermill passes them), drops those already
stored, and runs the rest, the longest first (:mod:`ibcore.orchestration.compute`): in this
process (``--workers 1``), in ``--workers N`` single-threaded Dask worker processes, or on an
existing cluster given by ``--scheduler``. Every run holds a lock file beside its record while
it trains, so two prefetches or pipelines on one results folder never train the same run. Each
run writes its record atomically when it ends (and resumes from its checkpoint after an
interruption); the notebooks then only read the records back.

Usage::

    python3 -m ibcore.prefetch --profile paper --workers 2 [--only STEM ...] [--datasets mnist]
    python3 -m ibcore.prefetch --profile paper --scheduler tcp://host:8786   # an existing Dask cluster
    python3 -m ibcore.prefetch --profile paper --device cuda --grouped [--max-group 8]   # batched runs
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ibcore.orchestration import compute
from ibcore.orchestration import jobs as jobs_
from ibcore.orchestration.groups import GROUPED_HELP, MAX_GROUP, group_jobs
from ibcore.orchestration.jobs import describe


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
    from ibcore.core.profiles import ProfileError
    from ibcore.core.results import StorageError, remove_stale_temps
    from ibcore.orchestration.executor import scheduler_address

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
    p.add_argument("--grouped", action="store_true", help=GROUPED_HELP)
    p.add_argument("--max-group", type=int, default=MAX_GROUP, metavar="N", help="largest group (default 8)")
    p.add_argument("--list", action="store_true", help="only print the runs still to do")
    args = p.parse_args(argv)
    overrides = {"device": args.device, "data_dir": args.data_dir}
    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        if args.max_group < 1:
            raise ValueError(f"--max-group must be >= 1, got {args.max_group}")
        jobs = jobs_.profile_jobs(args.profile, only=args.only, datasets=args.datasets, overrides=overrides)
        if not args.list:
            jobs_.check_resources(jobs, args.device, args.data_dir)
            for folder in sorted({j.results_dir for j in jobs}):
                remove_stale_temps(folder)
    except (ProfileError, ValueError, DataError, OSError) as err:
        print(f"[prefetch] error: {err}", file=sys.stderr)
        return 2
    print(f"[prefetch] profile {args.profile!r}: {len(jobs)} runs to do")
    if args.list:
        listed = group_jobs(jobs, args.max_group) if args.grouped else jobs
        if args.grouped:
            print(f"[prefetch] in {len(listed)} jobs (runs that share every shape grouped)")
        for j in listed:
            print(f"{j.stem:16s} {j.kind:8s} cost {j.cost:10.0f}  {describe(j) if j.members else j.key}")
        return 0
    try:
        summary = compute.run_profile(
            args.profile,
            args.workers,
            only=args.only,
            datasets=args.datasets,
            overrides=overrides,
            scheduler=args.scheduler,
            grouped=args.grouped,
            max_group=args.max_group,
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
