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
from ibcore.core.measurement import EVAL_SAMPLES, append_bounds, exact_bounds, measure_information
from ibcore.core.probes import accuracy
from ibcore.core.runstate import Checkpointer, _gen_state, adam, make_model


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


def train_cross_entropy(
    config: TrainConfig,
    data: Dataset,
    device: torch.device,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """End-to-end cross-entropy training of the whole net (the Table 1 baseline)."""
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
                i_x, i_y = measure_information(model, data, config, device, gen)
                curves["I_x"].append(i_x)
                curves["I_y"].append(i_y)
                eval_n = min(n, EVAL_SAMPLES)
                reps = model.representations(data.x_train[:eval_n])
                pairs = [exact_bounds(rep, config.sigma) for rep in reps]
                append_bounds(curves, [p[0] for p in pairs], [p[1] for p in pairs])
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
