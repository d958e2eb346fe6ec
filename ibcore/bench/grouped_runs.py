"""Grouped runs (issue 14): runs per hour of a beta-sweep cell trained one run at a time and
as one group (:mod:`ibcore.core.grouped`), and the records read back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from ibcore.bench.machine import _utc_now, machine_info, peak_rss_mib
from ibcore.bench.steps import BATCH_SIZE, SIGMA
from ibcore.core.activations import torch_float32_elu
from ibcore.core.config import TrainConfig
from ibcore.core.runtime import resolve_device

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
    as one group (``grouped.train_group``), on real MNIST data, with the test accuracies of both.
    The single runs go first, then the group, then (untimed) the single runs once more with
    torch's float32 ELU in the critics (:func:`ibcore.core.activations.torch_float32_elu`, at most
    1 ulp per activation): how far rounding alone moves each run, the scale of the grouped runs'
    differences from the single ones."""
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
        with torch_float32_elu():  # each activation moved by at most 1 ulp: rounding alone
            nudged = [train(c, d, device, progress=False) for c, d in zip(configs, datas, strict=True)]
        acc = [
            (s["metrics"]["test_accuracy"], g["metrics"]["test_accuracy"])
            for s, g in zip(singles, grouped, strict=True)
        ]
        rounding = [
            abs(s["metrics"]["test_accuracy"] - n["metrics"]["test_accuracy"])
            for s, n in zip(singles, nudged, strict=True)
        ]
        record |= {
            "single": {"seconds": single_s, "runs_per_hour": 3600 * len(configs) / single_s},
            "grouped": {"seconds": grouped_s, "runs_per_hour": 3600 * len(configs) / grouped_s},
            "speedup": single_s / grouped_s,
            "test_accuracy": [{"single": a, "grouped": b} for a, b in acc],
            "max_accuracy_difference": max(abs(a - b) for a, b in acc),
            # the single runs trained again with torch's float32 ELU (<= 1 ulp per activation)
            "rounding_accuracy_difference": rounding,
            "max_rounding_accuracy_difference": max(rounding),
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
    from ibcore.bench.frames import read_kind

    return read_kind(folder, GROUPED_KIND, "grouped*.json")


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
                "max rounding diff": r.get("max_rounding_accuracy_difference"),
            }
        )  # fmt: skip
    return pd.DataFrame(rows)
