"""End-to-end cross-entropy training of the whole net (the Table 1 baseline), optionally
measuring the information plane at its checkpoints; resumable from a checkpoint file."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.estimators import check_finite
from ibcore.core.measurement import (
    EVAL_SAMPLES,
    append_aligned,
    append_bounds,
    exact_bounds,
    measure_layers,
    probe_lower_bound,
)
from ibcore.core.models import LayerStack
from ibcore.core.probes import accuracy, label_entropy, probe_report
from ibcore.core.runstate import Checkpointer, _gen_state, adam, make_model, side_generator


def ce_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of cross-entropy training (Adam at ``config.lr``)."""
    return adam(list(model.parameters()), config.lr)


def ce_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One cross-entropy step of ``model`` on the batch (x, y); returns the detached loss.

    The body of :func:`train_cross_entropy`'s loop, shared with :mod:`ibcore.bench`.
    """
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def measure_checkpoint(
    model: LayerStack,
    data: Dataset,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    step: int,
    curves: dict,
) -> None:
    """Append the information plane of the frozen net at checkpoint ``step`` to ``curves``: per
    layer ``I_x``, ``I_y`` (:func:`measure_layers`) and the exact bounds of I(X; L_i + eps).

    Without a validation split the estimators draw from the training stream ``gen`` (stored
    records). With one (``config.val_size`` > 0) everything draws from side generators, so
    measuring never changes training, and per layer ``I_y_val`` (the label critic on the
    validation samples) is added and, with ``config.checkpoint_probe_steps`` > 0, a linear probe
    on L_i gives ``probe_val_accuracy``, ``probe_val_ce`` and ``I_y_probe_lower`` = H(Y) - CE
    (``H_y_val`` of the validation labels); nothing is clipped."""
    side = config.val_size > 0
    if side:
        m_gen = side_generator(device, config.seed, "measure", step)
        values = measure_layers(
            model, data, config, device, m_gen, side_generator(device, config.seed, "heldout", step)
        )
    else:
        values = measure_layers(model, data, config, device, gen)
    curves["I_x"].append(values["I_x"])
    curves["I_y"].append(values["I_y"])
    eval_n = min(data.x_train.shape[0], EVAL_SAMPLES)
    reps = model.representations(data.x_train[:eval_n])
    pairs = [exact_bounds(rep, config.sigma) for rep in reps]
    append_bounds(curves, [p[0] for p in pairs], [p[1] for p in pairs])
    if not side:
        return
    append_aligned(curves, "I_y_val", values["I_y_val"])
    h_y = curves["H_y_val"] = label_entropy(data.y_val, data.num_classes)
    if not config.checkpoint_probe_steps:
        return
    reports = [
        probe_report(
            model.prefix(i),
            data,
            config.checkpoint_probe_steps,
            config.probe_lr,
            side_generator(device, config.seed, "probe", i, step),
        )
        for i in range(1, len(model) + 1)
    ]
    append_aligned(curves, "probe_val_accuracy", [r["val"] for r in reports])
    append_aligned(curves, "probe_val_ce", [r["val_ce"] for r in reports])
    append_aligned(curves, "I_y_probe_lower", [probe_lower_bound(h_y, r["val_ce"]) for r in reports])


def train_cross_entropy(
    config: TrainConfig,
    data: Dataset,
    device: torch.device,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """End-to-end cross-entropy training of the whole net (the Table 1 baseline); with
    ``config.measure_steps`` > 0 the information plane is measured at each checkpoint
    (:func:`measure_checkpoint`)."""
    ckpt = Checkpointer(checkpoint)
    model = make_model(config, data).to(device)
    opt = ce_optimizer(model, config)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    curves: dict = {"step": [], "test_accuracy": [], "train_loss": [], "I_x": [], "I_y": []}
    start_step, elapsed = 0, 0.0
    state = ckpt.load()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        curves, start_step, elapsed = state["curves"], state["step"], state["elapsed"]
    every = max(1, config.steps // config.checkpoints)
    n = data.x_train.shape[0]
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    bar = tqdm(range(start_step + 1, config.steps + 1), desc="ce", disable=not progress, leave=False)
    for step in bar:
        idx = torch.randint(n, (config.batch_size,), generator=gen, device=device)
        loss_sum += ce_step(model, opt, data.x_train[idx], data.y_train[idx])
        if step % every == 0 or step == config.steps:
            mean_loss = check_finite(
                float(loss_sum) / every, f"cross-entropy loss at step {step}", "Lower lr."
            )
            loss_sum.zero_()
            curves["step"].append(step)
            curves["train_loss"].append(mean_loss)
            model.eval()
            curves["test_accuracy"].append(accuracy(model, data.x_test, data.y_test))
            if data.x_val is not None:
                curves.setdefault("val_accuracy", []).append(accuracy(model, data.x_val, data.y_val))
            if config.measure_steps:
                measure_checkpoint(model, data, config, device, gen, step, curves)
            model.train()
            bar.set_postfix(acc=f"{curves['test_accuracy'][-1]:.4f}")
            ckpt.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": _gen_state(gen),
                    "curves": curves,
                    "step": step,
                    "elapsed": elapsed + time.perf_counter() - t0,
                }
            )
    elapsed += time.perf_counter() - t0
    model.eval()
    metrics = {
        "test_accuracy": accuracy(model, data.x_test, data.y_test),
        "train_accuracy": accuracy(model, data.x_train, data.y_train),
    }
    if data.x_val is not None:
        metrics["val_accuracy"] = accuracy(model, data.x_val, data.y_val)
    return {
        "model": model,
        "metrics": metrics,
        "curves": {"ce": curves},
        "timings": {"train_seconds": elapsed, "seconds_per_step": elapsed / config.steps},
    }
