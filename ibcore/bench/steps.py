"""Training-step timings: one IB iteration per layer (``ib_iteration``, the trainer's own loop
body; Eq. 2 with the DV bounds of Eq. 6) against one cross-entropy
iteration of the same net, as paired ratios; for the tied critic (Table 1's rows) and, on the
MNIST MLP, for the paper's AA-MINE penalty (its own copy of the layer and two critic updates per
layer update, as the compression study trains it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ibcore.bench.machine import Section, _median_iqr, time_call
from ibcore.core.config import TrainConfig
from ibcore.core.models import LayerStack, build_model
from ibcore.core.penalties import make_penalty
from ibcore.core.training import (
    apply_in_chunks,
    ce_optimizer,
    ce_step,
    ib_iteration,
    ib_layer_setup,
)

#: Table 1's batch size and full-IB beta; beta = 0 is the "I(Y;L_i) only" row.
BATCH_SIZE = 128
BETAS = (1e-3, 0.0)
SIGMA = 1.0
#: the (beta, penalty) cases timed: Table 1's two rows with the tied critic, and the paper's
#: AA-MINE penalty (any beta > 0 costs the same) on the nets of ``PENALTY_NETS``
CASES: tuple[tuple[float, str], ...] = ((1e-3, "tied"), (0.0, "tied"), (1e-3, "aamine"))
PENALTY_NETS = ("mnist_mlp",)
#: critic updates per layer update of the AA-MINE penalty (the compression study's setting)
AAMINE_CRITIC_STEPS = 2
NETS: dict[str, dict[str, Any]] = {
    "mnist_mlp": {"dataset": "mnist", "input_shape": (1, 28, 28), "widths": (784, 512, 256, 10)},
    "cifar10_convnet": {"dataset": "cifar10", "input_shape": (3, 32, 32), "channels": (32, 64, 128)},
}


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
    name: str, beta: float, device: torch.device, n: int, seed: int, penalty: str = "tied"
) -> list[Callable[[], None]]:
    """One iteration of :func:`ibcore.core.training.train_ib_layerwise`'s loop for each layer
    (:func:`ibcore.core.training.ib_iteration`), with the tied critic or a penalty of
    :mod:`ibcore.core.penalties`."""
    torch.manual_seed(seed)
    model, base = _net(name)
    model = model.to(device)
    extra_steps = AAMINE_CRITIC_STEPS if penalty.startswith("aamine") else 1
    config = dataclasses.replace(base, method="ib", beta=beta, penalty=penalty, critic_steps=extra_steps)
    gen = torch.Generator(device=device).manual_seed(seed)
    aux_gen = torch.Generator(device=device).manual_seed(seed + 1)
    x_all = torch.randn((n, *NETS[name]["input_shape"]), generator=gen, device=device)
    y_all = torch.randint(10, (n,), generator=gen, device=device)
    model.requires_grad_(False)
    iterations = []
    h_prev_all = x_all
    for block in model.blocks:
        feature_shape, layer_params, opt_layer, objective = ib_layer_setup(block, h_prev_all, 10, config)
        pen = None
        if penalty != "tied" and beta > 0:
            pen = make_penalty(
                penalty, block, math.prod(feature_shape), config.sigma, config.critic_hidden, config.critic_lr
            )

        def iteration(
            block=block, h_prev_all=h_prev_all, feature_shape=feature_shape,
            layer_params=layer_params, opt_layer=opt_layer, objective=objective, pen=pen,
        ) -> None:  # fmt: skip
            ib_iteration(
                block, layer_params, opt_layer, objective, pen, h_prev_all, y_all, feature_shape, config,
                gen, aux_gen, config.sigma,
            )  # fmt: skip

        iterations.append(iteration)
        h_prev_all = apply_in_chunks(block, h_prev_all)
    return iterations


#: aten operations that only make views, allocate or convert scalars: no kernel of their own
NO_KERNEL_OPS = frozenset(
    {
        "aten::view", "aten::t", "aten::as_strided", "aten::expand", "aten::unsqueeze", "aten::squeeze",
        "aten::permute", "aten::transpose", "aten::slice", "aten::select", "aten::detach", "aten::alias",
        "aten::_reshape_alias", "aten::reshape", "aten::empty", "aten::empty_like", "aten::empty_strided",
        "aten::resolve_conj", "aten::resolve_neg", "aten::lift_fresh", "aten::_unsafe_view", "aten::flatten",
        "aten::result_type", "aten::contiguous", "aten::expand_as", "aten::view_as", "aten::_to_copy",
        "aten::to",
    }
)  # fmt: skip


def operation_count(fn: Callable[[], None], iterations: int = 2) -> float:
    """Operations per call of ``fn`` that run a kernel: the innermost aten operations the
    profiler records (views, allocations and conversions left out). Where a step is bound by
    kernel launches (a small net on a GPU) its time follows this count."""
    from torch.profiler import ProfilerActivity, profile

    def counted(name: str) -> bool:
        return name.startswith("aten::") and name not in NO_KERNEL_OPS

    fn()  # warm-up: lazy initialisation is not part of a step
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            fn()
    leaves = [
        e for e in prof.events() if counted(e.name) and not any(counted(c.name) for c in e.cpu_children)
    ]
    return len(leaves) / iterations


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
        cases: list[tuple[float, str, int, Callable[[], None]]] = []
        for beta, penalty in CASES:
            if penalty != "tied" and name not in PENALTY_NETS:
                continue
            for layer, fn in enumerate(_ib_iterations(name, beta, device, n, 0, penalty), 1):
                cases.append((beta, penalty, layer, fn))
        ce_times: list[float] = []
        ce_memory: dict[str, float] = {}
        times: list[list[float]] = [[] for _ in cases]
        ratios: list[list[float]] = [[] for _ in cases]
        memory: list[dict[str, float]] = [{} for _ in cases]
        for r in range(rounds):
            for k, (beta, penalty, layer, fn) in enumerate(cases):
                with Section(device) as sec:
                    ce_times.append(time_call(ce_fn, min_run_time))
                ce_memory = {key: max(v, ce_memory.get(key, 0.0)) for key, v in sec.memory.items()}
                with Section(device) as sec:
                    times[k].append(time_call(fn, min_run_time))
                memory[k] = {key: max(v, memory[k].get(key, 0.0)) for key, v in sec.memory.items()}
                ratios[k].append(times[k][-1] / ce_times[-1])
                log(
                    f"[bench] {name} ib {penalty} beta={beta:g} layer {layer} round {r + 1}/{rounds}: "
                    f"{1e3 * times[k][-1]:.2f} ms, CE {1e3 * ce_times[-1]:.2f} ms"
                )
        median, iqr = _median_iqr(ce_times)
        common = {"net": name, "batch_size": BATCH_SIZE}
        rows.append(
            {
                **common, "step": "ce", "beta": None, "layer": None, "median_s": median, "iqr_s": iqr,
                "ops_per_iteration": operation_count(ce_fn),
                "rounds_s": ce_times, "ratio_to_ce": 1.0, "ratio_iqr": 0.0, **ce_memory,
            }
        )  # fmt: skip
        for (beta, penalty, layer, fn), t, q, mem in zip(cases, times, ratios, memory, strict=True):
            median, iqr = _median_iqr(t)
            ratio, ratio_iqr = _median_iqr(q)
            rows.append(
                {
                    **common, "step": "ib", "beta": beta, "penalty": penalty, "layer": layer,
                    "median_s": median, "iqr_s": iqr, "rounds_s": t, "ratio_to_ce": ratio,
                    "ratio_iqr": ratio_iqr, "ratios": q, "ops_per_iteration": operation_count(fn), **mem,
                }
            )  # fmt: skip
    return rows
