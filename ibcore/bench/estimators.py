"""Estimator timings: MINE and AA-MINE training steps per second at the Figure 1 settings,
through ``estimate()`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from ibcore.bench.machine import Section, _median_iqr
from ibcore.experiments.figure1 import figure1_configs, make_estimator, panel_a_net

#: Figure 1 panel a: the measured net and the estimators' batch sizes.
FIG1_WIDTHS = (784, 256, 128, 64)
FIG1_BATCHES = (128, 256)
FIG1_SIGMA2 = 0.1


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
