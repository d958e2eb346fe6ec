"""The benchmark's record: every measurement with the machine, the pipeline's wall times
per profile, and the record written as JSON with a Markdown table beside it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ibcore.bench.estimators import bench_estimators
from ibcore.bench.machine import _utc_now, machine_info, peak_rss_mib
from ibcore.bench.steps import BATCH_SIZE, BETAS, CASES, NETS, PENALTY_NETS, SIGMA, bench_training
from ibcore.core.results import atomic_write_bytes, project_path
from ibcore.core.runtime import resolve_device

KIND = "bench"
#: 2: IB / CE ratios are medians of ratios to a CE timing taken right before (1: ratio of medians).
VERSION = 2
PROFILES = ("tiny", "default", "paper")
TIMINGS_NAME = "pipeline_timings.json"


def pipeline_timings(results_root: Path, profiles: Sequence[str] = PROFILES) -> dict[str, Any]:
    """Per profile: each notebook's wall time and the whole job's, from the pipeline's file."""
    out: dict[str, Any] = {}
    for profile in profiles:
        path = results_root / profile / TIMINGS_NAME
        try:
            data = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        notebooks = data.get("notebooks") or {}
        out[profile] = {
            "file": str(path),
            "started": data.get("started"),
            "finished": data.get("finished"),
            "status": data.get("status"),
            "host": data.get("host"),
            "overrides": data.get("overrides"),
            "notebooks": {
                stem: {"status": e.get("status"), "seconds": e.get("seconds")}
                for stem, e in notebooks.items()
                if isinstance(e, dict)
            },
            "notebooks_s": data.get("notebooks_s"),
            "training": data.get("training") or {},
            "book_s": data.get("book_s"),
            "total_s": data.get("total_s"),
        }
    return out


def run_benchmark(
    device: str | torch.device = "auto",
    quick: bool = False,
    threads: int | None = 1,
    nets: Sequence[str] = tuple(NETS),
    results_root: str | os.PathLike = "results",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure everything and return the record (see the module docstring)."""
    device = resolve_device(device)
    unknown = set(nets) - set(NETS)
    if unknown:
        raise ValueError(f"unknown net(s) {sorted(unknown)}; choose from {list(NETS)}")
    if threads is not None and not (isinstance(threads, int) and threads > 0):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(device, quick, nets, results_root, log)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(
    device: torch.device,
    quick: bool,
    nets: Sequence[str],
    results_root: str | os.PathLike,
    log: Callable[[str], None],
) -> dict[str, Any]:
    settings = {
        "quick": quick,
        "batch_size": BATCH_SIZE,
        "betas": list(BETAS),
        "cases": [{"beta": b, "penalty": p} for b, p in CASES],
        "penalty_nets": list(PENALTY_NETS),
        "sigma": SIGMA,
        "rounds": 1 if quick else 5,
        "min_run_time_s": 0.01 if quick else 0.3,
        "resident_samples": 512 if quick else 2048,
        "estimator_steps": [5, 15] if quick else [50, 250],
        "estimator_rounds": 1 if quick else 3,
        "estimator_samples": 1000 if quick else 2000,
    }
    record: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "date": _utc_now(),
        "machine": machine_info(device),
        "settings": settings,
    }
    start = time.perf_counter()
    record["training_steps"] = bench_training(
        device, nets, settings["rounds"], settings["min_run_time_s"], settings["resident_samples"], log
    )
    record["estimators"] = bench_estimators(
        device,
        settings["estimator_rounds"],
        tuple(settings["estimator_steps"]),
        settings["estimator_samples"],
        log,
    )
    record["pipeline"] = pipeline_timings(project_path(results_root))
    record["memory"] = {"peak_rss_mib": round(peak_rss_mib(), 1)}
    if device.type == "cuda":
        record["memory"]["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        record["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        record["machine"]["load_avg_end"] = None
    record["wall_s"] = round(time.perf_counter() - start, 2)
    return record


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown_report(record: dict[str, Any]) -> str:
    """The record as Markdown tables."""
    m = record["machine"]
    lines = [
        f"Benchmark of {record['date']} on {m['cpu']} ({m['cpus']} CPUs; device `{m['device']}`"
        + (f", {m['gpu']}" if m.get("gpu") else "")
        + f"), torch {m['torch']}, {m['threads']} thread(s), load average before/after "
        f"{m.get('load_avg_start')} / {m.get('load_avg_end')}"
        + (" (quick)" if record["settings"]["quick"] else "")
        + ".",
        "",
        "| net | step | penalty | beta | layer | ms / iteration (median) | IQR (ms) "
        "| x CE step (paired median) | IQR | peak RSS (MiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["training_steps"]:
        beta = "" if r["beta"] is None else f"{r['beta']:g}"
        penalty = r.get("penalty", "tied") if r["step"] == "ib" else ""
        lines.append(
            f"| {r['net']} | {r['step']} | {penalty} | {beta} | "
            f"{r['layer'] or ''} | {_fmt(1e3 * r['median_s'])} | {_fmt(1e3 * r['iqr_s'])} | "
            f"{_fmt(r['ratio_to_ce'])} | {_fmt(r.get('ratio_iqr'))} | {_fmt(r.get('peak_rss_mib'), 0)} |"
        )
    lines += [
        "",
        "| estimator | batch | steps / s (median) | IQR | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in record["estimators"]:
        lines.append(
            f"| {r['estimator']} | {r['batch_size']} | {_fmt(r['steps_per_s'], 1)} | "
            f"{_fmt(r['iqr_steps_per_s'], 1)} | {_fmt(r.get('peak_rss_mib'), 0)} |"
        )
    if record.get("pipeline"):
        lines += ["", "| profile | notebook | seconds | status |", "|---|---|---:|---|"]
        for profile, p in record["pipeline"].items():
            for stem, e in p["notebooks"].items():
                lines.append(f"| {profile} | {stem} | {_fmt(e['seconds'], 1)} | {e['status']} |")
            lines.append(f"| {profile} | **whole job** | {_fmt(p['total_s'], 1)} | {p['status']} |")
    return "\n".join(lines) + "\n"


def write_record(record: dict[str, Any], out: str | os.PathLike, name: str) -> Path:
    """``<out>/<name>.json`` and ``<out>/<name>.md``, each written atomically."""
    folder = project_path(out)
    path = folder / f"{name}.json"
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    atomic_write_bytes(folder / f"{name}.md", markdown_report(record).encode())
    for p in (path, folder / f"{name}.md"):
        os.chmod(p, 0o644)
    return path
