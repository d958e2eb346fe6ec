"""Benchmark of the training and estimation loops: ``python3 -m ibcore.bench``.

The command line: the full benchmark, with ``--grouped`` the grouped-run benchmark, or with
``--project PROFILE`` the profile's wall time projected from its stored runs' timings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ibcore.bench.grouped_runs import bench_grouped, grouped_frame
from ibcore.bench.record import markdown_report, run_benchmark, write_record
from ibcore.bench.steps import NETS
from ibcore.core.cpu_matmul import BACKENDS, cpu_matmul
from ibcore.core.results import atomic_write_bytes, project_path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m ibcore.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    parser.add_argument("--out", default="results/bench", help="folder of the record (default results/bench)")
    parser.add_argument("--name", default="latest", help="record name: <out>/<name>.json (default latest)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: one short round of everything")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--cpu-matmul", default="auto", choices=list(BACKENDS),
        help="library of float32 CPU products (ibcore.core.cpu_matmul; default auto: oneDNN where float32)",
    )  # fmt: skip
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS), help="nets to time")
    parser.add_argument(
        "--grouped", action="store_true",
        help="only the grouped-run benchmark (a beta-sweep cell, one at a time vs grouped; needs MNIST): "
        "writes <out>/grouped_<device>.json unless --name is given",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=100, help="IB steps per layer of the grouped benchmark")
    parser.add_argument("--capture", action="store_true", help="grouped benchmark with CUDA graphs (CUDA)")
    parser.add_argument(
        "--project", metavar="PROFILE",
        help="only project PROFILE's wall time from its stored runs' own timings "
        "(ibcore.bench.projection): writes <out>/projection_<PROFILE>.json unless --name is given",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes of the projection (default 2)"
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="leave these data sets' runs out of the projection",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.project:
        from ibcore.bench.projection import project_profile

        try:
            record = project_profile(args.project, args.workers, args.exclude)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        name = args.name if args.name != "latest" else f"projection_{args.project}"
        path = project_path(args.out) / f"{name}.json"
        atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
        print(json.dumps({k: v for k, v in record.items() if k != "by_kind"}, indent=1))
        print(f"[bench] wrote {path}")
        return 0
    try:
        with cpu_matmul(args.cpu_matmul):
            return _measure(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _measure(args: argparse.Namespace) -> int:
    """The grouped or the full benchmark, with the CPU matmul library in effect."""
    if args.grouped:
        record = bench_grouped(args.device, args.steps, args.quick, args.threads, args.capture)
        name = args.name if args.name != "latest" else f"grouped_{record['machine']['device'].split(':')[0]}"
        path = project_path(args.out) / f"{name}.json"
        atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
        print(grouped_frame({name: record}).to_string(index=False))
        print(f"[bench] wrote {path}")
        return 0
    record = run_benchmark(args.device, quick=args.quick, threads=args.threads, nets=args.nets)
    path = write_record(record, args.out, args.name)
    print(markdown_report(record))
    print(f"[bench] wrote {path} and {path.with_suffix('.md')} in {record['wall_s']:.0f} s")
    return 0
