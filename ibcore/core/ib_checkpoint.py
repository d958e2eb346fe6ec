"""One checkpoint of layer-by-layer IB training (Sec. 4): what the single-run trainer
(:mod:`ibcore.core.train_ib`) and the grouped trainer (:mod:`ibcore.core.grouped_ib`) record for
layer i at a step, so that both write the same curves.

At a checkpoint, on a fixed sample of training inputs: the DV bounds of the statistics networks,
I(X; L_i + eps) (the tied critic, recorded for every penalty) and I(Y; L_i) (Eq. 2's two terms);
the penalty's own value; the exact pairwise-KL / Bhattacharyya bounds of I(X; L_i + eps) for X
uniform over that sample; the layer's RMS radius and active-unit fraction. With a validation split
also I(Y; L_i) on the validation samples and, after the checkpoint probe, the probe bound
H(Y) - CE. A non-finite value ends the run (its failure is returned).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.estimators import marginal_permutation
from ibcore.core.ib_layer import LayerObjective, layer_statistics
from ibcore.core.measurement import (
    append_aligned,
    exact_bounds,
    heldout_label_information,
    probe_lower_bound,
)
from ibcore.core.models import LayerStack
from ibcore.core.penalties import Penalty
from ibcore.core.probes import apply_in_chunks, probe_accuracies, probe_report
from ibcore.core.runstate import side_generator


def new_layer_record(i: int, config: TrainConfig, h_y_val: float | None = None) -> dict[str, Any]:
    """The empty curves of layer ``i`` (``h_y_val``: the entropy of the validation labels, for
    a run with a validation split)."""
    record: dict[str, Any] = {
        "layer": i, "step": [], "I_x": [], "I_y": [], "probe_test_accuracy": [], "I_x_kl_upper": [],
        "I_x_bhattacharyya_lower": [], "sigma": [], "rms_radius": [], "active_fraction": [],
    }  # fmt: skip
    if config.beta > 0:
        record["penalty_value"] = []
    if config.val_size > 0:
        record["probe_val_accuracy"] = []
        record |= {"I_y_val": [], "H_y_val": h_y_val}
        if config.checkpoint_probe_steps:
            record |= {"probe_val_ce": [], "I_y_probe_lower": []}
    return record


def first_non_finite(values: dict[str, float | None]) -> tuple[str, float] | None:
    """The first (name, value) of ``values`` that is not finite (None is skipped)."""
    for name, v in values.items():
        if v is not None and not math.isfinite(v):
            return name, v
    return None


def record_checkpoint(
    record: dict[str, Any],
    *,
    config: TrainConfig,
    i: int,
    step: int,
    model: LayerStack,
    block: nn.Module,
    objective: LayerObjective,
    penalty: Penalty | None,
    sigma: float,
    data: Dataset,
    h_prev_all: torch.Tensor,
    h_prev_val: torch.Tensor | None,
    eval_idx: torch.Tensor,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, Any] | None:
    """Append layer ``i``'s checkpoint at ``step`` to ``record``; returns the run's failure
    ({layer, step, quantity, value}) when a value is not finite (nothing is appended then), else
    None. ``gen`` is the training generator: a run without a validation split draws its
    measurement noise and probe batches from it, as it always has; a run with one draws them
    from side generators, so measuring never changes its training."""
    side = config.val_size > 0
    m_gen = side_generator(device, config.seed, "measure", i, step) if side else gen
    h_eval, y_eval = h_prev_all[eval_idx], data.y_train[eval_idx]
    with torch.no_grad():
        l_eval = block(h_eval)
        noise_eval = sigma * torch.randn(l_eval.shape, generator=m_gen, device=device)
        perm_eval = marginal_permutation(l_eval.shape[0], m_gen)
        i_x_t, i_y_t = objective.bounds_on(l_eval, y_eval, noise_eval, perm_eval)
        i_x, i_y = float(i_x_t), float(i_y_t)
        penalty_value = None
        if penalty is not None:
            penalty_value = float(penalty.value(h_eval, l_eval, noise_eval, perm_eval))
        elif config.beta > 0:
            penalty_value = i_x  # the tied critic is the penalty
        upper = lower = None
        if sigma > 0:
            lower, upper = exact_bounds(l_eval, sigma)
        radius, active = layer_statistics(block, l_eval)
    bad = first_non_finite(
        {
            f"I(X;L_{i}+eps)": i_x,
            f"I(Y;L_{i})": i_y,
            f"penalty {config.penalty}": penalty_value,
            "RMS radius": radius,
        }
    )
    if bad is not None:
        return {"layer": i, "step": step, "quantity": bad[0], "value": repr(bad[1])}
    for key, value in (
        ("step", step), ("I_x", i_x), ("I_y", i_y), ("I_x_kl_upper", upper),
        ("I_x_bhattacharyya_lower", lower), ("sigma", sigma), ("rms_radius", radius),
        ("active_fraction", active),
    ):  # fmt: skip
        record[key].append(value)
    if config.beta > 0:
        record["penalty_value"].append(penalty_value)
    if side and h_prev_val is not None:
        with torch.no_grad():
            l_val = block(h_prev_val)
        heldout_gen = side_generator(device, config.seed, "heldout", i, step)
        append_aligned(
            record, "I_y_val", heldout_label_information(objective.critic_y, l_val, data.y_val, heldout_gen)
        )
    if config.checkpoint_probe_steps:
        features = apply_in_chunks(block, h_prev_all)
        if side:
            accs = probe_report(
                model.prefix(i), data, config.checkpoint_probe_steps, config.probe_lr,
                side_generator(device, config.seed, "probe", i, step), train_features=features,
            )  # fmt: skip
            record["probe_val_accuracy"].append(accs["val"])
            record["probe_test_accuracy"].append(accs["test"])
            append_aligned(record, "probe_val_ce", accs["val_ce"])
            append_aligned(record, "I_y_probe_lower", probe_lower_bound(record["H_y_val"], accs["val_ce"]))
        else:
            _, test_acc = probe_accuracies(
                model.prefix(i), data, config.checkpoint_probe_steps, config.probe_lr, gen,
                train_features=features,
            )  # fmt: skip
            record["probe_test_accuracy"].append(test_acc)
    return None
