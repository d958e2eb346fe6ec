"""Layer-by-layer training on the IB functional I(Y; L_i) - beta I(X; L_i + eps) (Eq. 2, Sec. 4),
with measurements and probes at each checkpoint; resumable from a checkpoint file."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.ib_checkpoint import new_layer_record, record_checkpoint
from ibcore.core.ib_layer import (
    CollapsedLayer,
    ib_iteration,
    ib_layer_setup,
    layer_sigma,
)
from ibcore.core.measurement import (
    EVAL_SAMPLES,
)
from ibcore.core.penalties import Penalty, make_penalty
from ibcore.core.probes import apply_in_chunks, label_entropy, probe_accuracies, probe_report
from ibcore.core.runstate import Checkpointer, _gen_state, make_model, side_generator


def train_ib_layerwise(
    config: TrainConfig,
    data: Dataset,
    device: torch.device,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """Layer-by-layer training on I(Y;L_i) - beta I(X;L_i+eps) (Eq. 2, Sec. 4), then a probe.

    For i = 1..n: layer i and the statistics networks (MINE for I(Y;L_i); for I(X;L_i+eps) the
    tied critic, whose copy of layers 1..i is the layers themselves) are updated in alternation
    for ``config.steps`` steps (:func:`ib_step`): first the critics ascend their DV bounds
    (Eq. 6, with MINE's moving-average gradient) with the layer fixed, then the layer ascends
    I(Y;L_i) - beta * penalty, each term evaluated with the now fixed critics. The penalty is
    the tied critic's DV bound ("tied") or another estimate of I(X;L_i+eps)
    (``config.penalty``, :mod:`ibcore.core.penalties`, :func:`ib_step_penalty`); the tied critic's
    value is recorded as ``I_x`` for every penalty, beside the pairwise bounds. Layer i is then
    frozen; layers 1..i-1 are frozen already, so their output is computed once per layer.

    With a validation split (``config.val_size`` > 0) each checkpoint also records, drawing from
    side generators only (the trajectory is that of the run without them), ``I_y_val``: the label
    critic's DV value of I(Y; L_i) on the validation samples (:func:`heldout_label_information`)
    and, with checkpoint probes, ``probe_val_ce`` and ``I_y_probe_lower`` = H(Y) - probe_val_ce, with
    H(Y) (``H_y_val``) of the validation labels; none of them is clipped.

    A checkpoint where I_x, I_y or the penalty is not finite ends the run: the result then has
    ``status`` "diverged" and ``failure`` (layer, step, quantity), and no probe.
    """
    ckpt = Checkpointer(checkpoint)
    model = make_model(config, data).to(device)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    # beside the training stream: extra critic batches, and (val_size > 0) probes and measurements
    aux_gen = side_generator(device, config.seed, "critic batches")
    side = config.val_size > 0
    n = data.x_train.shape[0]
    eval_idx = torch.arange(min(n, EVAL_SAMPLES), device=device)
    layers: list[dict] = []
    start_layer, start_step, elapsed = 1, 0, 0.0
    resume = ckpt.load()
    if resume is not None:
        model.load_state_dict(resume["model"])
        gen.set_state(resume["gen"])
        if "aux_gen" in resume:
            aux_gen.set_state(resume["aux_gen"])
        layers, start_layer, start_step = resume["layers"], resume["layer"], resume["step"]
        elapsed = resume["elapsed"]
    for p in model.parameters():
        p.requires_grad_(False)
    every = max(1, config.steps // config.checkpoints)
    t_all = time.perf_counter()
    h_prev_all = (
        apply_in_chunks(model.prefix(start_layer - 1), data.x_train) if start_layer > 1 else data.x_train
    )
    h_prev_val = None  # L_{i-1} of the validation samples, for held-out I(Y; L_i)
    if side:
        h_prev_val = (
            apply_in_chunks(model.prefix(start_layer - 1), data.x_val) if start_layer > 1 else data.x_val
        )
        h_y_val = label_entropy(data.y_val, data.num_classes)
    n_layers = config.max_layers or len(model)
    if n_layers > len(model):
        raise ValueError(f"max_layers={config.max_layers} but the net has {len(model)} layers")
    failure: dict | None = None
    for i in range(start_layer, n_layers + 1):
        block = model.blocks[i - 1]
        torch.manual_seed(config.seed * 1000 + i)  # critic init: the same whether resumed or not
        feature_shape, layer_params, opt_layer, objective = ib_layer_setup(
            block, h_prev_all, data.num_classes, config
        )
        resuming = resume is not None and i == start_layer and start_step > 0
        if resuming and "sigma_layer" in resume:
            sigma = resume["sigma_layer"]
        else:
            try:
                sigma = layer_sigma(config, block, h_prev_all[eval_idx], i)
            except CollapsedLayer as err:  # the layers below collapsed the data: stored as diverged
                failure = {
                    "layer": i,
                    "step": 0,
                    "quantity": "median nearest-neighbour distance (sigma_mode layer_scaled)",
                    "value": repr(err.scale),
                }
                layers.append({**new_layer_record(i, config, h_y_val if side else None), "seconds": 0.0})
                break
        penalty: Penalty | None = None
        if config.beta > 0 and config.penalty != "tied":
            penalty = make_penalty(
                config.penalty, block, math.prod(feature_shape), sigma, config.critic_hidden, config.critic_lr
            )
        record = new_layer_record(i, config, h_y_val if side else None)
        first, layer_before = 1, 0.0  # seconds spent on this layer before a resume
        if resuming:
            objective.load_state_dict(resume["objective"])
            opt_layer.load_state_dict(resume["opt_layer"])
            if penalty is not None and resume.get("penalty") is not None:
                penalty.load_state_dict(resume["penalty"])
            record = resume["record"]
            first = start_step + 1
            layer_before = float(resume.get("layer_elapsed", 0.0))
        t_layer = time.perf_counter()
        bar = tqdm(range(first, config.steps + 1), desc=f"layer {i}", disable=not progress, leave=False)
        for step in bar:
            ib_iteration(
                block, layer_params, opt_layer, objective, penalty, h_prev_all, data.y_train, feature_shape,
                config, gen, aux_gen, sigma,
            )  # fmt: skip
            if step % every == 0 or step == config.steps:
                failure = record_checkpoint(
                    record, config=config, i=i, step=step, model=model, block=block, objective=objective,
                    penalty=penalty, sigma=sigma, data=data, h_prev_all=h_prev_all, h_prev_val=h_prev_val,
                    eval_idx=eval_idx, gen=gen, device=device,
                )  # fmt: skip
                if failure is not None:
                    break
                bar.set_postfix(I_x=f"{record['I_x'][-1]:.2f}", I_y=f"{record['I_y'][-1]:.3f}")
                ckpt.save(
                    {
                        "model": model.state_dict(),
                        "gen": _gen_state(gen),
                        "aux_gen": _gen_state(aux_gen),
                        "layers": layers,
                        "layer": i,
                        "step": step,
                        "record": record,
                        "objective": objective.state_dict(),
                        "opt_layer": opt_layer.state_dict(),
                        "penalty": None if penalty is None else penalty.state_dict(),
                        "sigma_layer": sigma,
                        "elapsed": elapsed + time.perf_counter() - t_all,
                        "layer_elapsed": layer_before + time.perf_counter() - t_layer,
                    }
                )
        if failure is not None:  # the run diverged: stored with its failure, no probe
            record["seconds"] = layer_before + time.perf_counter() - t_layer
            for p in block.parameters():
                p.requires_grad_(False)
            layers.append(record)
            break
        record["seconds"] = layer_before + time.perf_counter() - t_layer
        for p in block.parameters():
            p.requires_grad_(False)
        layers.append(record)
        h_prev_all = apply_in_chunks(block, h_prev_all)
        if h_prev_val is not None:
            h_prev_val = apply_in_chunks(block, h_prev_val)
        ckpt.save(
            {
                "model": model.state_dict(),
                "gen": _gen_state(gen),
                "aux_gen": _gen_state(aux_gen),
                "layers": layers,
                "layer": i + 1,
                "step": 0,
                "elapsed": elapsed + time.perf_counter() - t_all,
            }
        )
    model.eval()
    t_probe = time.perf_counter()
    trained = model.prefix(n_layers)
    accs: dict[str, float] = {}
    if failure is not None:
        pass
    elif side:  # h_prev_all holds L_n of the training set now
        probe_gen = side_generator(device, config.seed, "probe", "final")
        accs = probe_report(trained, data, config.probe_steps, config.probe_lr, probe_gen, h_prev_all)
    else:
        accs["train"], accs["test"] = probe_accuracies(  # h_prev_all holds L_n of the training set now
            trained, data, config.probe_steps, config.probe_lr, gen, train_features=h_prev_all
        )
    probe_seconds = time.perf_counter() - t_probe
    elapsed += time.perf_counter() - t_all
    layer_seconds = [r.pop("seconds", None) for r in layers]  # timings, not curves
    metrics = {}
    if failure is None:
        metrics = {"test_accuracy": accs["test"], "train_accuracy": accs["train"]}
        if side:
            metrics["val_accuracy"] = accs["val"]
    metrics |= {
        "I_x": [r["I_x"][-1] if r["I_x"] else None for r in layers],
        "I_y": [r["I_y"][-1] if r["I_y"] else None for r in layers],
    }
    if config.beta > 0:  # a negative AA-MINE value: its critic lost the layer (finite: not "diverged")
        metrics["penalty_value"] = [r["penalty_value"][-1] if r["penalty_value"] else None for r in layers]
    out = {
        "model": model,
        "metrics": metrics,
        "curves": {"layers": layers},
        "timings": {
            "train_seconds": elapsed,
            "probe_seconds": probe_seconds,
            "layer_seconds": layer_seconds,
            "seconds_per_step": (elapsed - probe_seconds) / (config.steps * len(layers)),
        },
    }
    if failure is not None:
        out["status"] = "diverged"
        out["failure"] = failure
    return out
