"""Paper-profile runs trained with each CPU matmul library, side by side: MKL against oneDNN.

:mod:`ibcore.core.cpu_matmul` lets runs multiply float32 matrices with oneDNN's AVX-512 kernels
instead of MKL's AVX2 ones. This script measures what that saves on real runs, not on one step:
it picks stored runs of the paper profile (one per kind of run, the kinds that cost the most
first, until the expected time reaches ``--budget-s``), trains each twice at once, one process
per library on the two cores (so both see the same load), and stores each pair's seconds and
test accuracies as it goes (``--out``; a cut run resumes with the pairs it has not finished).

The projection scales the quiet from-scratch build's own run seconds (``--fresh``, the results
folder of that build) kind by kind with the measured ratio (kinds not sampled: the ratio over
all pairs) and states it as a projection. Run from the repository root:

    python3 benchmarks/cpu_matmul_runs.py --fresh /tmp/scratch/results/paper
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rerun_drift import _accuracy, _group  # noqa: E402

from ibcore.bench.machine import _utc_now  # noqa: E402
from ibcore.bench.projection import record_seconds  # noqa: E402
from ibcore.core.results import atomic_write_bytes  # noqa: E402

LIBRARIES = ("mkl", "onednn")
SAMPLED_KINDS = ("table1", "compression", "info_plane", "fig3", "figure1")


def kind_key(record: dict[str, Any]) -> str:
    """The kind of run a record is, for the ratio: its group (rerun_drift) and training fraction."""
    fraction = (record.get("config") or {}).get("fraction")
    return _group(record) + ("" if fraction is None else f" fraction={fraction}")


def _records(folder: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for path in sorted(folder.glob("*/*.json")):
        if path.parent.name not in SAMPLED_KINDS or path.name.count(".") > 1:
            continue
        record = json.loads(path.read_text())
        if (record.get("config") or {}).get("dataset") == "cifar10":
            continue
        out[f"{path.parent.name}/{path.name}"] = (path, record)
    return out


def choose(stored: Path, fresh: Path, budget_s: float) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One complete stored run per kind, the kinds with the most quiet seconds first, until the
    picks' quiet seconds reach ``budget_s``; and every kind's quiet seconds."""
    fresh_records = _records(fresh)
    totals: dict[str, float] = {}
    for _, record in fresh_records.values():
        seconds = record_seconds(record)
        if seconds is not None:
            totals[kind_key(record)] = totals.get(kind_key(record), 0.0) + seconds
    picks, spent = [], 0.0
    stored_records = _records(stored)
    for key in sorted(totals, key=totals.get, reverse=True):
        for name, (_, record) in stored_records.items():
            fresh_one = fresh_records.get(name)
            if kind_key(record) != key or record.get("status") != "complete" or fresh_one is None:
                continue
            seconds = record_seconds(fresh_one[1])
            if seconds is None or spent + seconds > budget_s:
                break
            picks.append({"name": name, "key": key, "quiet_s": round(seconds, 1)})
            spent += seconds
            break
    return picks, totals


def train_one(kind: str, config_json: str, results_dir: str) -> None:
    """Train one run into ``results_dir`` with the library IBCORE_CPU_MATMUL names (a child process)."""
    from ibcore.orchestration.jobs import Job, run_job

    run_job(
        Job(stem="cpu_matmul_runs", kind=kind, results_dir=results_dir, config=json.loads(config_json)), "cpu"
    )


def train_pair(pick: dict[str, Any], config: dict[str, Any], work: Path) -> dict[str, Any]:
    """Train ``pick`` with both libraries at once; its seconds and test accuracy under each."""
    kind = pick["name"].split("/")[0]
    procs = []
    for library in LIBRARIES:
        env = os.environ | {"IBCORE_CPU_MATMUL": library}
        cmd = [sys.executable, __file__, "--one", kind, json.dumps(config), str(work / library)]
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT))
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError(f"{pick['name']}: a training process failed")
    out = dict(pick)
    for library in LIBRARIES:
        record = json.loads((work / library / pick["name"]).read_text())
        assert record["environment"].get("cpu_matmul") == library, record["environment"]
        out[f"{library}_s"] = round(record_seconds(record), 2)
        acc = _accuracy(record)
        out[f"{library}_test_accuracy"] = None if acc is None else round(acc, 4)
    out["ratio"] = round(out["onednn_s"] / out["mkl_s"], 3)
    return out


def summarise(
    pairs: list[dict[str, Any]], totals: dict[str, float], wall_min: float | None
) -> dict[str, Any]:
    pooled = sum(p["onednn_s"] for p in pairs) / sum(p["mkl_s"] for p in pairs)
    ratio_of = {p["key"]: p["ratio"] for p in pairs}
    quiet = sum(totals.values())
    projected = sum(s * ratio_of.get(k, pooled) for k, s in totals.items())
    sampled = sum(s for k, s in totals.items() if k in ratio_of)
    out = {
        "pooled_ratio": round(pooled, 3),
        "ratio_range": [min(ratio_of.values()), max(ratio_of.values())],
        "quiet_run_seconds": round(quiet, 1),
        "sampled_share": round(sampled / quiet, 3),
        "projected_run_seconds": round(projected, 1),
        "projected_over_quiet": round(projected / quiet, 3),
    }
    if wall_min is not None:
        out |= {"measured_wall_min": wall_min, "projected_wall_min": round(wall_min * projected / quiet, 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--one":
        train_one(*sys.argv[2:5])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stored", type=Path, default=ROOT / "results" / "paper")
    p.add_argument("--fresh", type=Path, required=True, help="results folder of the quiet from-scratch build")
    p.add_argument("--work", type=Path, default=Path("/tmp/cpu_matmul_runs"))
    p.add_argument("--budget-s", type=float, default=1200.0, help="quiet seconds of the runs picked")
    p.add_argument("--wall-min", type=float, default=None, help="the from-scratch build's measured minutes")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "cpu_matmul_runs.json")
    args = p.parse_args(argv)
    for folder in (args.stored, args.fresh):
        if not folder.is_dir():
            print(f"error: {folder} is not a results folder", file=sys.stderr)
            return 2
    picks, totals = choose(args.stored, args.fresh, args.budget_s)
    done = {}
    if args.out.is_file():
        done = {q["name"]: q for q in json.loads(args.out.read_text()).get("pairs", [])}
    record: dict[str, Any] = {"kind": "bench_cpu_matmul_runs", "started": _utc_now(), "pairs": []}
    for pick in picks:
        if pick["name"] in done:
            record["pairs"].append(done[pick["name"]])
            continue
        config = json.loads((args.stored / pick["name"]).read_text())["config"]
        t = time.perf_counter()
        pair = train_pair(pick, config, args.work)
        pair["pair_wall_s"] = round(time.perf_counter() - t, 1)
        record["pairs"].append(pair)
        print(pair, flush=True)
        record |= {"finished": _utc_now(), "summary": summarise(record["pairs"], totals, args.wall_min)}
        atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    record |= {"finished": _utc_now(), "summary": summarise(record["pairs"], totals, args.wall_min)}
    record["note"] = (
        "Each pair: one stored paper-profile run trained twice at once from its stored configuration, "
        "one single-threaded process per library (IBCORE_CPU_MATMUL=mkl / onednn) on the 2-core CPU. "
        "The projection scales the quiet from-scratch build's own run seconds kind by kind by the "
        "measured ratio (kinds not sampled: the pooled ratio); it is a projection, not a measured build."
    )
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    print(json.dumps(record["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
