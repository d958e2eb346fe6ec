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
from ibcore.core.estimators import marginal_permutation
from ibcore.core.ib_layer import (
    ib_batch,
    ib_layer_setup,
    ib_step,
    ib_step_penalty,
    layer_sigma,
    layer_statistics,
)
from ibcore.core.measurement import (
    EVAL_SAMPLES,
    append_aligned,
    exact_bounds,
    heldout_label_information,
    probe_lower_bound,
)
from ibcore.core.penalties import Penalty, make_penalty
from ibcore.core.probes import apply_in_chunks, label_entropy, probe_accuracies, probe_report
from ibcore.core.runstate import Checkpointer, _gen_state, make_model, side_generator


def _first_non_finite(values: dict[str, float | None]) -> tuple[str, float] | None:
    for name, v in values.items():
        if v is not None and not math.isfinite(v):
            return name, v
    return None


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
            sigma = layer_sigma(config, block, h_prev_all[eval_idx], i)
        penalty: Penalty | None = None
        if config.beta > 0 and config.penalty != "tied":
            penalty = make_penalty(
                config.penalty, block, math.prod(feature_shape), sigma, config.critic_hidden, config.critic_lr
            )
        record = {
            "layer": i,
            "step": [],
            "I_x": [],
            "I_y": [],
            "probe_test_accuracy": [],
            "I_x_kl_upper": [],
            "I_x_bhattacharyya_lower": [],
            "sigma": [],
            "rms_radius": [],
            "active_fraction": [],
        }
        if config.beta > 0:
            record["penalty_value"] = []
        if side:
            record["probe_val_accuracy"] = []
            record |= {"I_y_val": [], "H_y_val": h_y_val}
            if config.checkpoint_probe_steps:
                record |= {"probe_val_ce": [], "I_y_probe_lower": []}
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
            h_prev, y, perm, noise = ib_batch(h_prev_all, data.y_train, feature_shape, config, gen, sigma)
            if penalty is None:
                ib_step(block, layer_params, opt_layer, objective, h_prev, y, perm, noise, config.beta)
            else:
                extra = []
                for _ in range(config.critic_steps - 1 if penalty.has_critic else 0):
                    h_x, _, perm_x, noise_x = ib_batch(
                        h_prev_all, data.y_train, feature_shape, config, aux_gen, sigma
                    )
                    extra.append((h_x, noise_x, perm_x))
                ib_step_penalty(
                    block, layer_params, opt_layer, objective, penalty, h_prev, y, perm, noise, config.beta,
                    extra_batches=extra,
                )  # fmt: skip
            if step % every == 0 or step == config.steps:
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
                bad = _first_non_finite(
                    {
                        f"I(X;L_{i}+eps)": i_x,
                        f"I(Y;L_{i})": i_y,
                        f"penalty {config.penalty}": penalty_value,
                        "RMS radius": radius,
                    }
                )
                if bad is not None:
                    failure = {"layer": i, "step": step, "quantity": bad[0], "value": repr(bad[1])}
                    break
                record["step"].append(step)
                record["I_x"].append(i_x)
                record["I_y"].append(i_y)
                record["I_x_kl_upper"].append(upper)
                record["I_x_bhattacharyya_lower"].append(lower)
                record["sigma"].append(sigma)
                record["rms_radius"].append(radius)
                record["active_fraction"].append(active)
                if config.beta > 0:
                    record["penalty_value"].append(penalty_value)
                if side:
                    with torch.no_grad():
                        l_val = block(h_prev_val)
                    heldout_gen = side_generator(device, config.seed, "heldout", i, step)
                    i_y_val = heldout_label_information(objective.critic_y, l_val, data.y_val, heldout_gen)
                    append_aligned(record, "I_y_val", i_y_val)
                if config.checkpoint_probe_steps:
                    features = apply_in_chunks(block, h_prev_all)
                    if side:
                        accs = probe_report(
                            model.prefix(i),
                            data,
                            config.checkpoint_probe_steps,
                            config.probe_lr,
                            side_generator(device, config.seed, "probe", i, step),
                            train_features=features,
                        )
                        record["probe_val_accuracy"].append(accs["val"])
                        record["probe_test_accuracy"].append(accs["test"])
                        append_aligned(record, "probe_val_ce", accs["val_ce"])
                        append_aligned(record, "I_y_probe_lower", probe_lower_bound(h_y_val, accs["val_ce"]))
                    else:
                        _, test_acc = probe_accuracies(
                            model.prefix(i),
                            data,
                            config.checkpoint_probe_steps,
                            config.probe_lr,
                            gen,
                            train_features=features,
                        )
                        record["probe_test_accuracy"].append(test_acc)
                bar.set_postfix(I_x=f"{i_x:.2f}", I_y=f"{i_y:.3f}")
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
