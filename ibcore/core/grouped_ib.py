"""Layer-by-layer IB training of a group (Eq. 2, DV bounds of Eq. 6): the batched alternation
of critic and layer updates for R runs, with each run's checkpoint measurements taken by the
single-run trainer's own functions (issue 14).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ibcore.core.config import TrainConfig
from ibcore.core.critics import SCALE_LR_FACTOR
from ibcore.core.data import Dataset
from ibcore.core.grouped_aamine import StackedAAMine
from ibcore.core.grouped_keys import CRITIC_PENALTIES, effective_penalty
from ibcore.core.grouped_replay import Replayable, group_timings
from ibcore.core.grouped_stack import (
    StackedModule,
    StackedMovingAverage,
    batched_closed_penalty,
    batched_dv_bound,
    batched_squared_distances,
    label_scores,
    stacked_adam,
    tied_initial_scale,
    tied_scores,
)
from ibcore.core.ib_checkpoint import new_layer_record, record_checkpoint
from ibcore.core.penalties import Penalty, make_penalty
from ibcore.core.probes import label_entropy
from ibcore.core.training import (
    EVAL_SAMPLES,
    apply_in_chunks,
    ib_batch,
    ib_layer_setup,
    layer_sigma,
    make_model,
    probe_accuracies,
    probe_report,
    side_generator,
)


class _Run:
    """One run's single-trainer state inside a group (model, generators, records)."""

    def __init__(self, config: TrainConfig, data: Dataset, device: torch.device) -> None:
        self.config, self.data = config, data
        torch.manual_seed(config.seed)  # as train() before the trainer
        self.model = make_model(config, data).to(device)
        self.gen = torch.Generator(device=device).manual_seed(config.seed)
        self.aux_gen = side_generator(device, config.seed, "critic batches")
        self.side = config.val_size > 0
        self.n = data.x_train.shape[0]
        self.eval_idx = torch.arange(min(self.n, EVAL_SAMPLES), device=device)
        self.h_prev_all = data.x_train
        self.h_prev_val = data.x_val if self.side else None  # for held-out I(Y; L_i)
        self.h_y_val = label_entropy(data.y_val, data.num_classes) if self.side else None
        self.layers: list[dict] = []
        self.failure: dict | None = None
        for p in self.model.parameters():
            p.requires_grad_(False)


class IBGroupLayer:
    """Layer i of every run of a group: stacked block, statistics networks and optimizers, and
    the batched alternation of :func:`ibcore.core.training.ib_step` / ``ib_step_penalty``."""

    def __init__(self, runs: Sequence[_Run], i: int, device: torch.device, capture: bool) -> None:
        self.runs, self.i = list(runs), i
        config = runs[0].config
        self.penalty_name = effective_penalty(max(runs, key=lambda r: r.config.beta).config)
        self.blocks, self.objectives, self.penalties, self.sigmas = [], [], [], []
        for run in runs:  # the single trainer's set-up, run after run (global RNG reseeded per run)
            c = run.config
            block = run.model.blocks[i - 1]
            torch.manual_seed(c.seed * 1000 + i)
            feature_shape, _, _, objective = ib_layer_setup(block, run.h_prev_all, run.data.num_classes, c)
            sigma = layer_sigma(c, block, run.h_prev_all[run.eval_idx], i)
            penalty: Penalty | None = None
            if c.beta > 0 and c.penalty != "tied":
                penalty = make_penalty(
                    c.penalty, block, math.prod(feature_shape), sigma, c.critic_hidden, c.critic_lr
                )
            self.blocks.append(block)
            self.objectives.append(objective)
            self.penalties.append(penalty)
            self.sigmas.append(sigma)
        self.feature_shape = feature_shape
        self.feature_dim = math.prod(feature_shape)
        self.block = StackedModule(self.blocks)
        self.critic_y = StackedModule([o.critic_y.net for o in self.objectives])
        self.log_scale = torch.zeros(len(runs), device=device, requires_grad=True)
        self.opt_layer = stacked_adam(self.block.parameters(), config.lr, capture)
        self.opt_critic = stacked_adam(
            [
                {"params": self.critic_y.parameters(), "lr": config.critic_lr},
                {"params": [self.log_scale], "lr": config.critic_lr * SCALE_LR_FACTOR},
            ],
            config.critic_lr,
            capture,
        )
        self.ma_y, self.ma_x = StackedMovingAverage(), StackedMovingAverage()
        self.beta = torch.tensor([r.config.beta for r in runs], device=device)
        self.sigma_t = torch.tensor(self.sigmas, device=device)
        self.any_beta = bool((self.beta > 0).any())
        self.aamine = None
        if self.penalty_name in CRITIC_PENALTIES:
            self.aamine = StackedAAMine(self.penalties, config.critic_lr, capture)  # type: ignore[arg-type]
        self.extra_steps = config.critic_steps - 1 if self.aamine is not None else 0
        self.scale_ready = False
        self.runner = Replayable(self._step, capture and device.type == "cuda")

    def batch(self) -> list[Tensor]:
        """The step's draws, run after run from each run's own generators (as the trainer)."""
        drawn = [
            ib_batch(r.h_prev_all, r.data.y_train, self.feature_shape, r.config, r.gen, s)
            for r, s in zip(self.runs, self.sigmas, strict=True)
        ]
        out = [torch.stack([d[k] for d in drawn]) for k in range(4)]
        for _ in range(self.extra_steps):
            extra = [
                ib_batch(r.h_prev_all, r.data.y_train, self.feature_shape, r.config, r.aux_gen, s)
                for r, s in zip(self.runs, self.sigmas, strict=True)
            ]
            out += [torch.stack([d[0] for d in extra]), torch.stack([d[3] for d in extra])]
            out.append(torch.stack([d[2] for d in extra]))
        return out

    def step(self, batch: list[Tensor]) -> None:
        self.runner(*batch)

    def _critic_update(self, l_fixed: Tensor, y: Tensor, perm: Tensor, d2_fixed: Tensor) -> None:
        sur_y = self.ma_y.surrogate(*label_scores(self.critic_y, l_fixed, y, perm))
        sur_x = self.ma_x.surrogate(*tied_scores(self.log_scale, d2_fixed, perm, self.feature_dim))
        self.opt_critic.zero_grad(set_to_none=True)
        (-(sur_y + sur_x)).sum().backward()
        self.opt_critic.step()

    def _step(self, h_prev: Tensor, y: Tensor, perm: Tensor, noise: Tensor, *extra: Tensor) -> None:
        l = self.block(h_prev)  # noqa: E741
        l_fixed = l.detach()
        tied = self.penalty_name == "tied"
        with torch.set_grad_enabled(tied and self.any_beta):
            h = l.flatten(2)
            z = h + noise.flatten(2)
            if not self.scale_ready:  # the layer's first batch (known on the host: no sync)
                with torch.no_grad():
                    self.log_scale.copy_(tied_initial_scale(h.detach(), z.detach(), self.feature_dim))
                self.scale_ready = True
            d2 = batched_squared_distances(z, h)
        self._critic_update(l_fixed, y, perm, d2.detach())
        goal = batched_dv_bound(*label_scores(self.critic_y, l, y, perm))
        if tied:
            if self.any_beta:
                goal = goal - self.beta * batched_dv_bound(
                    *tied_scores(self.log_scale, d2, perm, self.feature_dim)
                )
        else:
            if self.aamine is not None:
                for k in range(0, len(extra), 3):
                    h_x, noise_x, perm_x = extra[k : k + 3]
                    with torch.no_grad():
                        l_x = self.block(h_x)
                    self.aamine.train_critic(h_x, l_x, noise_x, perm_x)
                self.aamine.train_critic(h_prev, l_fixed, noise, perm)
                value = self.aamine.value(h_prev, l, noise, perm)
            else:
                weights = [p for n, p in self.block.params.items() if p.dim() > 2]
                value = batched_closed_penalty(self.penalty_name, l, self.sigma_t, weights)
            goal = goal - self.beta * value
        params = self.block.parameters()
        grads = torch.autograd.grad(-goal.sum(), params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g.contiguous()  # a transposed view from bmm's backward: fused Adam needs p's layout
        self.opt_layer.step()

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stacked state into each run's block, critics and penalty (for measuring)."""
        self.block.write_back(self.blocks)
        self.critic_y.write_back([o.critic_y.net for o in self.objectives])
        for r, o in enumerate(self.objectives):
            o.critic_x.log_scale.copy_(self.log_scale[r])
            o.critic_x.scale_initialised.fill_(True)
            o.critic_x._scale_ready = True
        if self.aamine is not None:
            self.aamine.write_back()

    def checkpoint(self, k: int, step: int, record: dict, device: torch.device) -> None:
        """The trainer's checkpoint of run k at ``step``: DV bounds, penalty, exact bounds,
        layer statistics and (``checkpoint_probe_steps``) a probe; sets the run's failure on a
        non-finite value."""
        run, i, c = self.runs[k], self.i, self.runs[k].config
        block, objective, penalty, sigma = (
            self.blocks[k],
            self.objectives[k],
            self.penalties[k],
            self.sigmas[k],
        )
        run.failure = record_checkpoint(
            record, config=c, i=i, step=step, model=run.model, block=block, objective=objective,
            penalty=penalty, sigma=sigma, data=run.data, h_prev_all=run.h_prev_all,
            h_prev_val=run.h_prev_val, eval_idx=run.eval_idx, gen=run.gen, device=device,
        )  # fmt: skip


def train_ib_group(
    configs: Sequence[TrainConfig], datas: Sequence[Dataset], device: torch.device, capture: bool = False
) -> list[dict]:
    """:func:`ibcore.core.training.train_ib_layerwise` for R runs at once (no mid-run
    checkpoint file: a cut group restarts its runs). A run that diverges stops with its
    failure; the others go on."""
    runs = [_Run(c, d, device) for c, d in zip(configs, datas, strict=True)]
    config = configs[0]
    n_layers = config.max_layers or len(runs[0].model)
    every = max(1, config.steps // config.checkpoints)
    t_all = time.perf_counter()
    notes = []
    for i in range(1, n_layers + 1):
        active = [r for r in runs if r.failure is None]
        if not active:
            break
        t_layer = time.perf_counter()
        layer = IBGroupLayer(active, i, device, capture)
        records = [new_layer_record(i, r.config, r.h_y_val) for r in active]
        live = list(range(len(active)))
        for step in range(1, config.steps + 1):
            layer.step(layer.batch())
            if step % every == 0 or step == config.steps:
                layer.write_back()
                for k in list(live):
                    layer.checkpoint(k, step, records[k], device)
                    if active[k].failure is not None:
                        live.remove(k)
                if not live:
                    break
        seconds = (time.perf_counter() - t_layer) / len(active)
        if layer.runner.note:
            notes.append(layer.runner.note)
        layer.write_back()
        for k, run in enumerate(active):
            records[k]["seconds"] = seconds
            for p in layer.blocks[k].parameters():
                p.requires_grad_(False)
            run.layers.append(records[k])
            if run.failure is None:
                run.h_prev_all = apply_in_chunks(layer.blocks[k], run.h_prev_all)
                if run.h_prev_val is not None:
                    run.h_prev_val = apply_in_chunks(layer.blocks[k], run.h_prev_val)
    train_elapsed = time.perf_counter() - t_all
    outs = []
    for run in runs:
        c = run.config
        run.model.eval()
        t_probe = time.perf_counter()
        trained = run.model.prefix(n_layers)
        accs: dict[str, float] = {}
        if run.failure is not None:
            pass
        elif run.side:
            probe_gen = side_generator(device, c.seed, "probe", "final")
            accs = probe_report(trained, run.data, c.probe_steps, c.probe_lr, probe_gen, run.h_prev_all)
        else:
            accs["train"], accs["test"] = probe_accuracies(
                trained, run.data, c.probe_steps, c.probe_lr, run.gen, train_features=run.h_prev_all
            )
        probe_seconds = time.perf_counter() - t_probe
        layer_seconds = [r.pop("seconds", None) for r in run.layers]
        metrics: dict[str, Any] = {}
        if run.failure is None:
            metrics = {"test_accuracy": accs["test"], "train_accuracy": accs["train"]}
            if run.side:
                metrics["val_accuracy"] = accs["val"]
        metrics |= {
            "I_x": [r["I_x"][-1] if r["I_x"] else None for r in run.layers],
            "I_y": [r["I_y"][-1] if r["I_y"] else None for r in run.layers],
        }
        if c.beta > 0:
            metrics["penalty_value"] = [
                r["penalty_value"][-1] if r["penalty_value"] else None for r in run.layers
            ]
        timings = group_timings(train_elapsed, len(runs), c.steps * max(1, len(run.layers)))
        timings |= {"probe_seconds": probe_seconds, "layer_seconds": layer_seconds}
        timings["train_seconds"] += probe_seconds
        if notes:
            timings["note"] = notes[0]
        out = {"model": run.model, "metrics": metrics, "curves": {"layers": run.layers}, "timings": timings}
        if run.failure is not None:
            out["status"] = "diverged"
            out["failure"] = run.failure
        outs.append(out)
    return outs
