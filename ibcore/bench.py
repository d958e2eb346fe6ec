"""Benchmark of the training and estimation loops: ``python3 -m ibcore.bench``.

Measures, on synthetic tensors of the real shapes (no data files needed):

- the time of one layer-by-layer IB training iteration (:func:`ibcore.core.training.ib_batch` +
  :func:`ibcore.core.training.ib_step`, the exact body of the trainer's loop) for every layer of the
  MNIST MLP (784-512-256-10) and of the CIFAR-10 conv-net (channels 32-64-128, 4 layers), and
  its ratio to one cross-entropy iteration (:func:`ibcore.core.training.ce_step`) of the same net,
  same batch size (128) and device; for the full IB row (beta > 0) and the "I(Y;L_i) only"
  row (beta = 0) of Table 1;
- MINE and AA-MINE training steps per second at the Figure 1 settings (MLP 784-256-128-64
  with random weights, batch 128 and 256), timed through ``estimate()`` itself: the time of
  S2 - S1 extra steps, so set-up and held-out evaluation cancel;
- the wall time of each notebook and of the whole main job per profile, read from
  ``results/<profile>/pipeline_timings.json`` where present;
- peak memory: the process's maximum resident set size (CPU) and
  ``torch.cuda.max_memory_allocated`` per measurement (CUDA).

Timings use :class:`torch.utils.benchmark.Timer` (``blocked_autorange``: warm-up, then blocks
of repeats), in several interleaved rounds, medians reported; every IB timing is paired with a
CE timing taken right before it and the IB / CE ratio is the median of these paired ratios, so
a load change on a shared machine hits both alike. The record (machine, device, torch version,
date, threads, system load before and after) is written atomically to ``<out>/<name>.json``
with a Markdown table beside it (``<name>.md``). ``benchmarks/paired_before_after.py`` times
the original (reference) step against the current one in the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils import benchmark

from ibcore.core.config import TrainConfig
from ibcore.core.models import LayerStack, build_model
from ibcore.core.results import atomic_write_bytes, project_path
from ibcore.core.runtime import resolve_device
from ibcore.core.training import (
    apply_in_chunks,
    ce_optimizer,
    ce_step,
    ib_batch,
    ib_layer_setup,
    ib_step,
)
from ibcore.experiments.figure1 import figure1_configs, make_estimator, panel_a_net

KIND = "bench"
#: 2: IB / CE ratios are medians of ratios to a CE timing taken right before (1: ratio of medians).
VERSION = 2
PROFILES = ("tiny", "default", "paper")
TIMINGS_NAME = "pipeline_timings.json"
#: Table 1's batch size and full-IB beta; beta = 0 is the "I(Y;L_i) only" row.
BATCH_SIZE = 128
BETAS = (1e-3, 0.0)
SIGMA = 1.0
NETS: dict[str, dict[str, Any]] = {
    "mnist_mlp": {"dataset": "mnist", "input_shape": (1, 28, 28), "widths": (784, 512, 256, 10)},
    "cifar10_convnet": {"dataset": "cifar10", "input_shape": (3, 32, 32), "channels": (32, 64, 128)},
}
#: Figure 1 panel a: the measured net and the estimators' batch sizes.
FIG1_WIDTHS = (784, 256, 128, 64)
FIG1_BATCHES = (128, 256)
FIG1_SIGMA2 = 0.1


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def peak_rss_mib() -> float:
    """The process's maximum resident set size so far, in MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
    }
    try:
        info["load_avg_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["load_avg_start"] = None
    return info


class Section:
    """Peak memory of one measurement: process max RSS after it, and the CUDA peak during it."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> Section:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        self.memory = {"peak_rss_mib": round(peak_rss_mib(), 1)}
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.memory["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)


def time_call(fn: Callable[[], Any], min_run_time: float) -> float:
    """Median seconds per call of ``fn`` (torch.utils.benchmark: warm-up, then blocks)."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def _median_iqr(values: Sequence[float]) -> tuple[float, float]:
    values = sorted(values)
    if len(values) < 2:
        return values[0], 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), q[2] - q[0]


# -- training steps ------------------------------------------------------------------------


def _net(name: str) -> tuple[LayerStack, TrainConfig]:
    spec = NETS[name]
    kwargs = {"widths": spec["widths"]} if "widths" in spec else {}
    config = TrainConfig(dataset=spec["dataset"], batch_size=BATCH_SIZE, sigma=SIGMA, **kwargs)
    if "widths" in spec:
        model = build_model("mlp", widths=spec["widths"])
    else:
        model = build_model("convnet", in_channels=spec["input_shape"][0], channels=spec["channels"])
    return model, config


def _ce_iteration(name: str, device: torch.device, n: int, seed: int) -> Callable[[], None]:
    """One iteration of :func:`ibcore.core.training.train_cross_entropy`'s loop."""
    torch.manual_seed(seed)
    model, config = _net(name)
    model = model.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    x_all = torch.randn((n, *NETS[name]["input_shape"]), generator=gen, device=device)
    y_all = torch.randint(10, (n,), generator=gen, device=device)
    opt = ce_optimizer(model, config)
    loss_sum = torch.zeros((), device=device)

    def iteration() -> None:
        nonlocal loss_sum
        idx = torch.randint(n, (config.batch_size,), generator=gen, device=device)
        loss_sum += ce_step(model, opt, x_all[idx], y_all[idx])

    return iteration


def _ib_iterations(
    name: str, beta: float, device: torch.device, n: int, seed: int
) -> list[Callable[[], None]]:
    """One iteration of :func:`ibcore.core.training.train_ib_layerwise`'s loop for each layer."""
    torch.manual_seed(seed)
    model, base = _net(name)
    model = model.to(device)
    config = dataclasses.replace(base, method="ib", beta=beta)
    gen = torch.Generator(device=device).manual_seed(seed)
    x_all = torch.randn((n, *NETS[name]["input_shape"]), generator=gen, device=device)
    y_all = torch.randint(10, (n,), generator=gen, device=device)
    model.requires_grad_(False)
    iterations = []
    h_prev_all = x_all
    for block in model.blocks:
        feature_shape, layer_params, opt_layer, objective = ib_layer_setup(block, h_prev_all, 10, config)

        def iteration(
            block=block, h_prev_all=h_prev_all, feature_shape=feature_shape,
            layer_params=layer_params, opt_layer=opt_layer, objective=objective,
        ) -> None:  # fmt: skip
            h_prev, y, perm, noise = ib_batch(h_prev_all, y_all, feature_shape, config, gen)
            ib_step(block, layer_params, opt_layer, objective, h_prev, y, perm, noise, config.beta)

        iterations.append(iteration)
        h_prev_all = apply_in_chunks(block, h_prev_all)
    return iterations


def bench_training(
    device: torch.device,
    nets: Sequence[str],
    rounds: int,
    min_run_time: float,
    n: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Rows: the CE iteration and the IB iteration of every layer, per net and beta.

    In every round each IB case is timed right after a CE timing of the same net, and its
    ratio to that CE time is kept: on a shared machine the load changes between rounds more
    than between two adjacent timings, so the median of these paired ratios is steadier than
    the ratio of the two medians. The CE row holds all CE timings.
    """
    rows: list[dict[str, Any]] = []
    for name in nets:
        ce_fn = _ce_iteration(name, device, n, seed=0)
        cases: list[tuple[float, int, Callable[[], None]]] = []
        for beta in BETAS:
            for layer, fn in enumerate(_ib_iterations(name, beta, device, n, seed=0), 1):
                cases.append((beta, layer, fn))
        ce_times: list[float] = []
        ce_memory: dict[str, float] = {}
        times: list[list[float]] = [[] for _ in cases]
        ratios: list[list[float]] = [[] for _ in cases]
        memory: list[dict[str, float]] = [{} for _ in cases]
        for r in range(rounds):
            for k, (beta, layer, fn) in enumerate(cases):
                with Section(device) as sec:
                    ce_times.append(time_call(ce_fn, min_run_time))
                ce_memory = {key: max(v, ce_memory.get(key, 0.0)) for key, v in sec.memory.items()}
                with Section(device) as sec:
                    times[k].append(time_call(fn, min_run_time))
                memory[k] = {key: max(v, memory[k].get(key, 0.0)) for key, v in sec.memory.items()}
                ratios[k].append(times[k][-1] / ce_times[-1])
                log(
                    f"[bench] {name} ib beta={beta:g} layer {layer} round {r + 1}/{rounds}: "
                    f"{1e3 * times[k][-1]:.2f} ms, CE {1e3 * ce_times[-1]:.2f} ms"
                )
        median, iqr = _median_iqr(ce_times)
        common = {"net": name, "batch_size": BATCH_SIZE}
        rows.append(
            {
                **common, "step": "ce", "beta": None, "layer": None, "median_s": median, "iqr_s": iqr,
                "rounds_s": ce_times, "ratio_to_ce": 1.0, "ratio_iqr": 0.0, **ce_memory,
            }
        )  # fmt: skip
        for (beta, layer, _), t, q, mem in zip(cases, times, ratios, memory, strict=True):
            median, iqr = _median_iqr(t)
            ratio, ratio_iqr = _median_iqr(q)
            rows.append(
                {
                    **common, "step": "ib", "beta": beta, "layer": layer, "median_s": median,
                    "iqr_s": iqr, "rounds_s": t, "ratio_to_ce": ratio, "ratio_iqr": ratio_iqr,
                    "ratios": q, **mem,
                }
            )  # fmt: skip
    return rows


# -- estimators ----------------------------------------------------------------------------


def bench_estimators(
    device: torch.device,
    rounds: int,
    steps: tuple[int, int],
    n_samples: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """MINE and AA-MINE steps per second at the Figure 1 settings, through ``estimate()``."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_samples, 1, 28, 28, generator=gen).to(device)
    s1, s2 = steps
    for batch in FIG1_BATCHES:
        for est in ("mine", "aamine"):
            rates = []
            with Section(device) as sec:
                for r in range(rounds):
                    seconds = {}
                    for s in (s1, s2):
                        (config,) = figure1_configs(
                            sigma2_grid=[FIG1_SIGMA2], panels=["a"], estimators=[est], steps=s,
                            batch_size=batch, widths=FIG1_WIDTHS, n_samples=n_samples,
                        )  # fmt: skip
                        net = panel_a_net(config, device)
                        with torch.no_grad():
                            features = net(x)
                        estimator = make_estimator(config, net.prefix(len(net)), device)
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        start = time.perf_counter()
                        estimator.estimate(x, features)
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        seconds[s] = time.perf_counter() - start
                    rates.append((s2 - s1) / max(seconds[s2] - seconds[s1], 1e-9))
                    log(f"[bench] {est} batch {batch} round {r + 1}/{rounds}: {rates[-1]:.1f} steps/s")
            median, iqr = _median_iqr(rates)
            rows.append(
                {
                    "estimator": est,
                    "batch_size": batch,
                    "widths": list(FIG1_WIDTHS),
                    "sigma2": FIG1_SIGMA2,
                    "steps_per_s": median,
                    "iqr_steps_per_s": iqr,
                    "rounds_steps_per_s": rates,
                    **sec.memory,
                }
            )
    return rows


# -- pipeline wall times -------------------------------------------------------------------


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


# -- the record ----------------------------------------------------------------------------


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
        "| net | step | beta | layer | ms / iteration (median) | IQR (ms) | x CE step (paired median) "
        "| IQR | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["training_steps"]:
        beta = "" if r["beta"] is None else f"{r['beta']:g}"
        lines.append(
            f"| {r['net']} | {r['step']} | {beta} | "
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


# -- grouped runs (issue 14) -----------------------------------------------------------------

GROUPED_KIND = "bench_grouped"
#: The beta-sweep cell of the grouped benchmark: MNIST 1 %, Table 1's net and batch, seeds x betas.
GROUPED_SEEDS = (0, 1)
GROUPED_BETAS = (0.0, 1e-3, 1e-1, 10.0)


def grouped_cell(steps: int, quick: bool = False) -> list[TrainConfig]:
    """The runs of the benchmark's beta-sweep cell (MNIST 1 %, 784-512-256-10, batch 128, sigma 1),
    ``steps`` IB steps per layer, checkpoints and probes shortened in proportion."""
    seeds = GROUPED_SEEDS[:1] if quick else GROUPED_SEEDS
    betas = GROUPED_BETAS[:2] if quick else GROUPED_BETAS
    common = dict(
        dataset="mnist", fraction=0.01, method="ib", steps=steps, batch_size=BATCH_SIZE, sigma=SIGMA,
        checkpoints=2, checkpoint_probe_steps=max(5, steps // 2), probe_steps=max(10, 2 * steps),
    )  # fmt: skip
    return [TrainConfig(**common, seed=s, beta=b) for s in seeds for b in betas]


def bench_grouped(
    device: str | torch.device = "auto",
    steps: int = 100,
    quick: bool = False,
    threads: int | None = 1,
    capture: bool = False,
    data_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs per hour of one beta-sweep cell trained one run at a time (``training.train``) and
    as one group (``grouped.train_group``), on real MNIST data, with the test accuracies of both
    (they agree within float tolerance). The single runs go first, then the group."""
    from ibcore.core.grouped import train_group
    from ibcore.core.training import train
    from ibcore.experiments.table1 import DataCache

    device = resolve_device(device)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        configs = grouped_cell(steps, quick)
        cache = DataCache(data_dir, device)
        datas = [cache.get(c) for c in configs]  # loaded before any timing
        record: dict[str, Any] = {
            "kind": GROUPED_KIND,
            "date": _utc_now(),
            "machine": machine_info(device),
            "settings": {
                "quick": quick, "runs": len(configs), "seeds": sorted({c.seed for c in configs}),
                "betas": sorted({c.beta for c in configs}), "config": configs[0].to_dict(),
                "capture": capture,
            },
        }  # fmt: skip
        start = time.perf_counter()
        singles = [train(c, d, device, progress=False) for c, d in zip(configs, datas, strict=True)]
        single_s = time.perf_counter() - start
        log(f"[bench] {len(configs)} runs one at a time: {single_s:.1f} s")
        start = time.perf_counter()
        grouped = train_group(configs, datas, device, capture=capture)
        grouped_s = time.perf_counter() - start
        log(f"[bench] the same {len(configs)} runs as one group: {grouped_s:.1f} s")
        acc = [
            (s["metrics"]["test_accuracy"], g["metrics"]["test_accuracy"])
            for s, g in zip(singles, grouped, strict=True)
        ]
        record |= {
            "single": {"seconds": single_s, "runs_per_hour": 3600 * len(configs) / single_s},
            "grouped": {"seconds": grouped_s, "runs_per_hour": 3600 * len(configs) / grouped_s},
            "speedup": single_s / grouped_s,
            "test_accuracy": [{"single": a, "grouped": b} for a, b in acc],
            "max_accuracy_difference": max(abs(a - b) for a, b in acc),
            "memory": {"peak_rss_mib": round(peak_rss_mib(), 1)},
        }
        try:
            record["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            record["machine"]["load_avg_end"] = None
        return record
    finally:
        torch.set_num_threads(previous)


def read_grouped(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The grouped-run benchmark records ``<folder>/grouped*.json``, by name, oldest first."""
    folder = project_path(folder)
    found = []
    for path in folder.glob("grouped*.json") if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("kind") == GROUPED_KIND:
            found.append((record.get("date", ""), path.stem, record))
    return {name: record for _, name, record in sorted(found)}


def grouped_frame(records: dict[str, dict[str, Any]]):
    """One row per grouped-run record: device, runs, wall seconds and runs per hour both ways."""
    import pandas as pd

    rows = []
    for name, r in records.items():
        m = r["machine"]
        rows.append(
            {
                "record": name, "device": m["device"] + (f" ({m['gpu']})" if m.get("gpu") else ""),
                "threads": m["threads"], "load": (m.get("load_avg_start") or [None])[0],
                "runs": r["settings"]["runs"], "steps": r["settings"]["config"]["steps"],
                "single s": r["single"]["seconds"], "grouped s": r["grouped"]["seconds"],
                "single runs/h": r["single"]["runs_per_hour"],
                "grouped runs/h": r["grouped"]["runs_per_hour"],
                "speed-up": r["speedup"], "max acc diff": r["max_accuracy_difference"],
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


# -- reading records back (the book page) ---------------------------------------------------


def read_records(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The benchmark records ``<folder>/<name>.json``, by name, oldest first."""
    folder = project_path(folder)
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    found = []
    for path in folder.glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("kind") == KIND:
            found.append((record.get("date", ""), path.stem, record))
    for _, name, record in sorted(found):
        out[name] = record
    return out


def read_paired(folder: str | os.PathLike, name: str = "paired_before_after") -> dict[str, Any] | None:
    """The record of ``benchmarks/paired_before_after.py`` in ``folder``, or None."""
    path = project_path(folder) / f"{name}.json"
    try:
        record = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == "bench_paired" else None


def training_frame(record: dict[str, Any]):
    """One row per net and layer: CE and IB milliseconds per iteration and their ratios."""
    import pandas as pd

    rows = record["training_steps"]
    ce = {r["net"]: r for r in rows if r["step"] == "ce"}
    out = []
    for r in rows:
        if r["step"] != "ib":
            continue
        out.append(
            {
                "net": r["net"],
                "layer": r["layer"],
                "beta": r["beta"],
                "CE ms": 1e3 * ce[r["net"]]["median_s"],
                "IB ms": 1e3 * r["median_s"],
                "IB / CE": r["ratio_to_ce"],
            }
        )
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    wide = frame.pivot_table(index=["net", "layer"], columns="beta", values=["IB ms", "IB / CE"], sort=False)
    wide.columns = [f"{what} (beta={beta:g})" for what, beta in wide.columns]
    wide.insert(0, "CE ms", frame.groupby(["net", "layer"], sort=False)["CE ms"].first())
    return wide.reset_index()


def estimator_frame(record: dict[str, Any]):
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "estimator": {"mine": "MINE", "aamine": "AA-MINE"}[r["estimator"]],
                "batch": r["batch_size"],
                "steps / s": r["steps_per_s"],
                "IQR": r["iqr_steps_per_s"],
            }
            for r in record["estimators"]
        ]
    )


def pipeline_frame(pipeline: dict[str, Any]):
    """One row per profile and notebook (and the whole job), wall seconds."""
    import pandas as pd

    rows = []
    for profile, p in pipeline.items():
        training = p.get("training") or {}
        if training.get("workers", 1) > 1:
            rows.append(
                {
                    "profile": profile,
                    "notebook": f"(training: {training.get('runs')} runs, {training['workers']} workers)",
                    "seconds": training.get("seconds"),
                    "status": "done",
                }
            )
        for stem, e in p["notebooks"].items():
            rows.append(
                {"profile": profile, "notebook": stem, "seconds": e["seconds"], "status": e["status"]}
            )
        rows.append(
            {"profile": profile, "notebook": "(whole job)", "seconds": p["total_s"], "status": p["status"]}
        )
    return pd.DataFrame(rows, columns=["profile", "notebook", "seconds", "status"])


def speedups(before: dict[str, Any], after: dict[str, Any]):
    """Per training iteration and estimator: before / after time (> 1 is faster after)."""
    import pandas as pd

    def key(r: dict[str, Any]) -> tuple:
        return (r["net"], r["step"], r["beta"], r["layer"])

    old = {key(r): r for r in before["training_steps"]}
    rows = []
    for r in after["training_steps"]:
        b = old.get(key(r))
        if b is None:
            continue
        rows.append(
            {
                "what": f"{r['net']} "
                + ("CE" if r["step"] == "ce" else f"IB beta={r['beta']:g} layer {r['layer']}"),
                "before ms": 1e3 * b["median_s"],
                "after ms": 1e3 * r["median_s"],
                "speed-up": b["median_s"] / r["median_s"],
                "x CE before": b["ratio_to_ce"],
                "x CE after": r["ratio_to_ce"],
            }
        )
    est = {(r["estimator"], r["batch_size"]): r for r in before["estimators"]}
    for r in after["estimators"]:
        b = est.get((r["estimator"], r["batch_size"]))
        if b is not None:
            rows.append(
                {
                    "what": f"{r['estimator']} batch {r['batch_size']} (ms per step)",
                    "before ms": 1e3 / b["steps_per_s"],
                    "after ms": 1e3 / r["steps_per_s"],
                    "speed-up": r["steps_per_s"] / b["steps_per_s"],
                }
            )
    return pd.DataFrame(rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m ibcore.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    parser.add_argument("--out", default="results/bench", help="folder of the record (default results/bench)")
    parser.add_argument("--name", default="latest", help="record name: <out>/<name>.json (default latest)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: one short round of everything")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS), help="nets to time")
    parser.add_argument(
        "--grouped", action="store_true",
        help="only the grouped-run benchmark (a beta-sweep cell, one at a time vs grouped; needs MNIST): "
        "writes <out>/grouped_<device>.json unless --name is given",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=100, help="IB steps per layer of the grouped benchmark")
    parser.add_argument("--capture", action="store_true", help="grouped benchmark with CUDA graphs (CUDA)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.grouped:
        record = bench_grouped(args.device, args.steps, args.quick, args.threads, args.capture)
        name = args.name if args.name != "latest" else f"grouped_{record['machine']['device'].split(':')[0]}"
        path = project_path(args.out) / f"{name}.json"
        atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
        print(grouped_frame({name: record}).to_string(index=False))
        print(f"[bench] wrote {path}")
        return 0
    try:
        record = run_benchmark(args.device, quick=args.quick, threads=args.threads, nets=args.nets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    path = write_record(record, args.out, args.name)
    print(markdown_report(record))
    print(f"[bench] wrote {path} and {path.with_suffix('.md')} in {record['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
