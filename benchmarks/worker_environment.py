"""What the pipeline's worker processes cost a training step: Dask's MALLOC_TRIM_THRESHOLD_.

Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting it turns off glibc's
dynamic mmap threshold, so every block over 128 KiB is mapped and faulted in afresh at each
allocation. This script times one IB iteration of layer 1 of the MNIST MLP (tied critic,
beta = 1e-3, batch 128; ``ibcore.bench.steps``) and one cross-entropy iteration, single-threaded,
in four places, round after round so that all see the same load:

- a plain process;
- a plain process started with ``MALLOC_TRIM_THRESHOLD_=65536``;
- a worker of a Dask ``LocalCluster`` with Dask's default environment;
- a worker of the pipeline's own embedded cluster (``ibcore.orchestration.executor``, which
  leaves the variable out).

Run from the repository root (about a minute on 2 cores):

    python3 benchmarks/worker_environment.py [--rounds 3] [--out results/bench/worker_environment.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRIM = {"MALLOC_TRIM_THRESHOLD_": "65536"}


def measure() -> dict[str, Any]:
    """Median ms of one IB iteration of layer 1 and of one CE iteration, in this process."""
    import torch

    from ibcore.bench.machine import time_call
    from ibcore.bench.steps import _ce_iteration, _ib_iterations
    from ibcore.core.cpu_matmul import cpu_matmul
    from ibcore.core.runtime import torch_threads

    with torch_threads(), cpu_matmul() as library:
        device = torch.device("cpu")
        ib = _ib_iterations("mnist_mlp", 1e-3, device, 2048, 0)[0]
        ce = _ce_iteration("mnist_mlp", device, 2048, 0)
        return {
            "ib_layer1_ms": 1e3 * time_call(ib, 1.0),
            "ce_ms": 1e3 * time_call(ce, 1.0),
            "malloc_trim_threshold": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "cpu_matmul": library,
        }


def in_process(extra_env: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"} | extra_env
    out = subprocess.run(
        [sys.executable, __file__, "--measure"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_dask_default() -> dict[str, Any]:
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False}, memory_limit=0, silence_logs=logging.CRITICAL,
    ) as cluster, Client(cluster) as client:  # fmt: skip
        result = client.submit(measure, pure=False).result()
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # the nanny set it in this process too
    return result


def in_pipeline_worker() -> dict[str, Any]:
    from ibcore.orchestration.executor import _dask_client

    with _dask_client(1, None) as client:
        return client.submit(measure, pure=False).result()


PLACES = {
    "plain process": lambda: in_process({}),
    "plain process, MALLOC_TRIM_THRESHOLD_=65536": lambda: in_process(TRIM),
    "Dask worker, Dask's default environment": in_dask_default,
    "pipeline worker (ibcore.orchestration.executor)": in_pipeline_worker,
}


def main(argv: list[str] | None = None) -> int:
    if sys.argv[1:] == ["--measure"]:
        print(json.dumps(measure()))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "worker_environment.json")
    args = p.parse_args(argv)
    import torch

    from ibcore.bench.machine import _utc_now, machine_info
    from ibcore.core.results import atomic_write_bytes

    started = _utc_now()
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in PLACES}
    for r in range(args.rounds):
        for name, run in PLACES.items():
            seen[name].append(run())
            print(f"round {r + 1}: {name}: {seen[name][-1]}", flush=True)
    rows = [
        {
            "place": name,
            "malloc_trim_threshold": results[0]["malloc_trim_threshold"],
            "cpu_matmul": results[0]["cpu_matmul"],
            "ib_layer1_ms": round(statistics.median(x["ib_layer1_ms"] for x in results), 3),
            "ce_ms": round(statistics.median(x["ce_ms"] for x in results), 3),
            "rounds": len(results),
        }
        for name, results in seen.items()
    ]
    record = {
        "kind": "bench_worker_environment",
        "date": started,
        "finished": _utc_now(),
        "machine": machine_info(torch.device("cpu")),
        "rows": rows,
        "note": "Median over rounds of each place's median milliseconds per iteration "
        "(torch.utils.benchmark, 1 s blocks), single-threaded, MNIST MLP 784-512-256-10, batch 128.",
    }
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    for row in rows:
        print(row)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
