"""Cross-entropy training of a group: :func:`ibcore.core.training.train_cross_entropy` for
R runs at once, one batched step (issue 14).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.estimators import check_finite
from ibcore.core.grouped_replay import Replayable, group_timings
from ibcore.core.grouped_stack import StackedModule, stacked_adam
from ibcore.core.training import accuracy, make_model, measure_checkpoint


def train_ce_group(
    configs: Sequence[TrainConfig], datas: Sequence[Dataset], device: torch.device, capture: bool = False
) -> list[dict]:
    """:func:`ibcore.core.training.train_cross_entropy` for R runs at once."""
    nets = []
    for c, d in zip(configs, datas, strict=True):
        torch.manual_seed(c.seed)  # as train() before the trainer
        nets.append(make_model(c, d).to(device))
    stacked = StackedModule(nets)
    config = configs[0]
    opt = stacked_adam(stacked.parameters(), config.lr, capture)
    gens = [torch.Generator(device=device).manual_seed(c.seed) for c in configs]
    curves: list[dict] = [
        {"step": [], "test_accuracy": [], "train_loss": [], "I_x": [], "I_y": []} for _ in configs
    ]
    every = max(1, config.steps // config.checkpoints)
    n = datas[0].x_train.shape[0]
    loss_sum = torch.zeros(len(configs), device=device)

    def step(x: Tensor, y: Tensor) -> None:
        logits = stacked(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        loss_sum.add_(loss.detach())

    runner = Replayable(step, capture and device.type == "cuda")
    t0 = time.perf_counter()
    for s in range(1, config.steps + 1):
        idx = [torch.randint(n, (config.batch_size,), generator=g, device=device) for g in gens]
        x = torch.stack([d.x_train[i] for d, i in zip(datas, idx, strict=True)])
        y = torch.stack([d.y_train[i] for d, i in zip(datas, idx, strict=True)])
        runner(x, y)
        if s % every == 0 or s == config.steps:
            stacked.write_back(nets)
            losses = loss_sum.tolist()
            loss_sum.zero_()
            for r, (c, data, net, gen) in enumerate(zip(configs, datas, nets, gens, strict=True)):
                cv = curves[r]
                mean_loss = check_finite(losses[r] / every, f"cross-entropy loss at step {s}", "Lower lr.")
                cv["step"].append(s)
                cv["train_loss"].append(mean_loss)
                net.eval()
                cv["test_accuracy"].append(accuracy(net, data.x_test, data.y_test))
                if data.x_val is not None:
                    cv.setdefault("val_accuracy", []).append(accuracy(net, data.x_val, data.y_val))
                if c.measure_steps:  # the single trainer's checkpoint (held-out values included)
                    measure_checkpoint(net, data, c, device, gen, s, cv)
                net.train()
    elapsed = time.perf_counter() - t0
    outs = []
    for c, data, net, cv in zip(configs, datas, nets, curves, strict=True):
        net.eval()
        metrics = {
            "test_accuracy": accuracy(net, data.x_test, data.y_test),
            "train_accuracy": accuracy(net, data.x_train, data.y_train),
        }
        if data.x_val is not None:
            metrics["val_accuracy"] = accuracy(net, data.x_val, data.y_val)
        outs.append(
            {
                "model": net,
                "metrics": metrics,
                "curves": {"ce": cv},
                "timings": group_timings(elapsed, len(configs), c.steps, runner),
            }
        )
    return outs
