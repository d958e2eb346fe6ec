"""The benchmark's machine record and clock: host, device, load, peak memory per
measurement, and median seconds per call (:class:`torch.utils.benchmark.Timer`).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils import benchmark

from ibcore.core import cpu_matmul


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
        "cpu_matmul": cpu_matmul.in_effect(),
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
