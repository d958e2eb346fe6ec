"""Trainers: cross-entropy end to end, and layer by layer with the IB functional (Sec. 4).

Both return the parts of a results record (``metrics``, ``curves``, ``timings``) and can
resume from a checkpoint file written atomically at every checkpoint. The parts live in
:mod:`ibcore.core.runstate` (net, Adam, side generators, checkpoints), :mod:`ibcore.core.probes`,
:mod:`ibcore.core.ib_layer` (one IB layer step), :mod:`ibcore.core.measurement` and the loops
:mod:`ibcore.core.train_ce` and :mod:`ibcore.core.train_ib`; their public names are importable
from here as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.ib_checkpoint import first_non_finite as _first_non_finite
from ibcore.core.ib_layer import (
    LayerObjective,
    ib_batch,
    ib_iteration,
    ib_layer_setup,
    ib_step,
    ib_step_penalty,
    layer_sigma,
    layer_statistics,
    median_nn_distance,
)
from ibcore.core.measurement import (
    EVAL_SAMPLES,
    append_aligned,
    append_bounds,
    exact_bounds,
    heldout_label_information,
    measure_information,
    measure_layers,
    probe_lower_bound,
)
from ibcore.core.probes import (
    accuracy,
    apply_in_chunks,
    label_entropy,
    probe_accuracies,
    probe_report,
    train_linear_probe,
)
from ibcore.core.runstate import (
    FUSED_ADAM_DEVICES,
    Checkpointer,
    _gen_state,
    adam,
    make_model,
    side_generator,
)
from ibcore.core.train_ce import ce_optimizer, ce_step, measure_checkpoint, train_cross_entropy
from ibcore.core.train_ib import train_ib_layerwise

__all__ = [
    "EVAL_SAMPLES",
    "FUSED_ADAM_DEVICES",
    "TRAINERS",
    "Checkpointer",
    "LayerObjective",
    "_first_non_finite",
    "_gen_state",
    "accuracy",
    "adam",
    "append_bounds",
    "measure_checkpoint",
    "label_entropy",
    "probe_lower_bound",
    "measure_layers",
    "heldout_label_information",
    "append_aligned",
    "apply_in_chunks",
    "ce_optimizer",
    "ce_step",
    "exact_bounds",
    "ib_batch",
    "ib_iteration",
    "ib_layer_setup",
    "ib_step",
    "ib_step_penalty",
    "layer_sigma",
    "layer_statistics",
    "make_model",
    "measure_information",
    "median_nn_distance",
    "probe_accuracies",
    "probe_report",
    "side_generator",
    "train",
    "train_cross_entropy",
    "train_ib_layerwise",
    "train_linear_probe",
]

TRAINERS: dict[str, Callable[..., dict]] = {"ce": train_cross_entropy, "ib": train_ib_layerwise}


def train(
    config: TrainConfig,
    data: Dataset,
    device: torch.device,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """Run ``config`` on ``data``; returns the trained ``model`` and the record's metrics,
    curves and timings."""
    if data.name != config.dataset:
        raise ValueError(f"config is for {config.dataset!r} but data holds {data.name!r}")
    n_val = 0 if data.x_val is None else data.x_val.shape[0]
    if n_val != config.val_size:
        raise ValueError(
            f"config.val_size = {config.val_size} but data holds a validation split of {n_val}; "
            f"load the data with ibcore.core.data.with_validation(data, {config.val_size})"
            if config.val_size
            else f"data holds a validation split of {n_val} but config.val_size = 0; load the data afresh"
        )
    torch.manual_seed(config.seed)
    return TRAINERS[config.method](config, data, device, checkpoint=checkpoint, progress=progress)
