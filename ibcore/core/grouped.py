"""Many runs of one cell trained at once: the run axis stacked (issue 14).

Runs that share every shape (data set, fraction, widths, steps, batch size, learning rates, ...)
and differ only in seed, beta, sigma or sigma mode form a *group*. The group's nets, statistics
networks and optimizer states are stacked on a leading run axis of size R; one batched step
(``torch.baddbmm`` for the MLP's linear layers, ``torch.func.vmap`` for other blocks) trains all
R runs. The loss is the sum of the runs' losses and nothing couples runs, so each run's gradient
is its own, and Adam on a stacked tensor is each run's Adam (an elementwise rule).

Each run keeps the random streams of the single-run trainer (:mod:`ibcore.core.training`):
its model and critics are built by the same functions from the same seeds, and its batches,
permutations and noise are drawn from its own generator, one run after another. Checkpoint
measurements (DV bounds, exact bounds, probes) run per run on the unstacked modules with the
trainer's own functions. A group's records therefore equal the separate runs' records within
floating-point tolerance (``tests/test_grouped.py``).

Penalties covered: "tied" (the default, Eq. 2 with the tied critic), "pairwise_kl", "logdet",
"weight_decay" (closed forms) and the paper's "aamine" / "aamine_stopgrad" (its critic trains a
copy of block i, ``critic_steps`` updates per layer update). The conv-net runs through ``vmap``.

``capture=True`` (CUDA only) replays the fixed-shape step as a CUDA graph (:class:`Replayable`):
the random draws stay outside the graph, on the device, and the step itself issues no host sync.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ibcore.core.config import TrainConfig
from ibcore.core.critics import LOGSUMEXP_FLOOR, SCALE_LR_FACTOR
from ibcore.core.data import Dataset
from ibcore.core.dv import MAX_EXPONENT
from ibcore.core.estimators import check_finite, marginal_permutation
from ibcore.core.penalties import AAMinePenalty, Penalty, make_penalty
from ibcore.core.results import atomic_torch_save, environment, model_path, read_record, write_record
from ibcore.core.training import (
    EVAL_SAMPLES,
    accuracy,
    append_bounds,
    apply_in_chunks,
    exact_bounds,
    ib_batch,
    ib_layer_setup,
    layer_sigma,
    layer_statistics,
    make_model,
    measure_information,
    probe_accuracies,
    probe_report,
    side_generator,
)

#: Config fields that may differ within a group (everything else must match).
PER_RUN = ("seed", "beta", "sigma", "sigma_mode")
#: Penalties whose statistics network has its own parameters (a copy of block i).
CRITIC_PENALTIES = ("aamine", "aamine_stopgrad")


# -- grouping -------------------------------------------------------------------------------


def effective_penalty(config: TrainConfig) -> str:
    """The penalty a run trains with: none acts at beta = 0, whose run takes the tied path."""
    return config.penalty if config.method == "ib" and config.beta > 0 else "tied"


def group_key(config: TrainConfig) -> str:
    """What must match for runs to share a group: every field but :data:`PER_RUN`, with the
    penalty (and its critic steps) as it acts."""
    d = asdict(config)
    for name in PER_RUN:
        d.pop(name)
    d["penalty"] = effective_penalty(config)
    d["critic_steps"] = config.critic_steps if d["penalty"] in CRITIC_PENALTIES else 1
    return repr(sorted(d.items()))


def group_configs(configs: Iterable[TrainConfig], max_size: int = 0) -> list[list[TrainConfig]]:
    """``configs`` split into groups (order of first appearance kept), each at most ``max_size``
    runs (0: no limit)."""
    groups: dict[str, list[TrainConfig]] = {}
    for c in configs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for members in groups.values():
        size = max_size or len(members)
        out += [members[k : k + size] for k in range(0, len(members), size)]
    return out


# -- stacked modules and batched math -------------------------------------------------------


def _chain(module: nn.Module) -> list[nn.Module] | None:
    """The leaf modules of ``module`` in call order when it is a plain chain of Flatten, Linear,
    ReLU, ELU (a Sequential, or a LayerStack of them); else None."""
    if isinstance(module, (nn.Flatten, nn.Linear, nn.ReLU, nn.ELU, nn.Identity)):
        return [module]
    children = getattr(module, "blocks", module) if not isinstance(module, nn.Sequential) else module
    if not isinstance(children, (nn.Sequential, nn.ModuleList)):
        return None
    out: list[nn.Module] = []
    for child in children:
        sub = _chain(child)
        if sub is None:
            return None
        out += sub
    return out


class StackedModule:
    """R modules of one architecture as stacked parameters [R, ...] and a batched forward on
    inputs [R, B, ...] (``torch.baddbmm`` per linear layer: the same products as the single
    module's ``addmm``; ``vmap`` of ``functional_call`` for other blocks)."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.template = modules[0]
        self.names = [n for n, _ in self.template.named_parameters()]
        self.params = {
            n: torch.stack([m.get_parameter(n).detach() for m in modules]).requires_grad_(True)
            for n in self.names
        }
        self.chain = _chain(self.template)
        if self.chain is not None:
            ids = {id(p): n for n, p in self.template.named_parameters()}
            self._keys = [
                (ids[id(leaf.weight)], None if leaf.bias is None else ids[id(leaf.bias)])
                if isinstance(leaf, nn.Linear)
                else None
                for leaf in self.chain
            ]

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())

    def __call__(self, x: Tensor) -> Tensor:
        if self.chain is None:
            fn = lambda p, xs: torch.func.functional_call(self.template, p, (xs,))  # noqa: E731
            return torch.func.vmap(fn)(self.params, x)
        for leaf, key in zip(self.chain, self._keys, strict=True):
            if key is not None:
                w = self.params[key[0]].transpose(1, 2)
                x = torch.bmm(x, w) if key[1] is None else torch.baddbmm(self.params[key[1]][:, None], x, w)
            elif isinstance(leaf, nn.Flatten):
                x = x.flatten(2)
            elif isinstance(leaf, nn.ReLU):
                x = F.relu(x)
            elif isinstance(leaf, nn.ELU):
                x = F.elu(x, leaf.alpha)
        return x

    @torch.no_grad()
    def write_back(self, modules: Sequence[nn.Module]) -> None:
        """Copy run r's parameters into ``modules[r]``."""
        for r, m in enumerate(modules):
            for n in self.names:
                m.get_parameter(n).copy_(self.params[n][r])


def batched_squared_distances(z: Tensor, h: Tensor) -> Tensor:
    """[r, k, j] = ||z_rk - h_rj||^2 (:func:`ibcore.core.critics.squared_distances` per run)."""
    norms = z.pow(2).sum(2, keepdim=True) + h.pow(2).sum(2)[:, None, :]
    return torch.baddbmm(norms, z, h.transpose(1, 2), alpha=-2).clamp_min(0)


def batched_floored_logsumexp(logits: Tensor, floor: float = LOGSUMEXP_FLOOR) -> Tensor:
    """:func:`ibcore.core.critics.floored_logsumexp` over the last axis."""
    top = logits.detach().amax(-1, keepdim=True)
    return top.squeeze(-1) + torch.exp((logits - top).clamp_min(-floor)).sum(-1).log()


def batched_dv_bound(t_joint: Tensor, t_marginal: Tensor) -> Tensor:
    """The DV bound of Eq. 6 per run: scores [R, B] -> [R]."""
    return t_joint.mean(1) - (torch.logsumexp(t_marginal, dim=1) - math.log(t_marginal.shape[1]))


class StackedMovingAverage:
    """:class:`ibcore.core.dv.MovingAverageDV` per run; the average [R] is updated in place
    after the first batch (a CUDA graph replays the same memory)."""

    def __init__(self, rate: float = 0.01) -> None:
        self.rate = rate
        self.log_ma: Tensor | None = None

    def surrogate(self, t_joint: Tensor, t_marginal: Tensor) -> Tensor:
        batch_lme = torch.logsumexp(t_marginal.detach(), dim=1) - math.log(t_marginal.shape[1])
        if self.log_ma is None:
            self.log_ma = batch_lme.clone()
        else:
            new = torch.logaddexp(self.log_ma + math.log1p(-self.rate), batch_lme + math.log(self.rate))
            self.log_ma.copy_(new)
        return t_joint.mean(1) - torch.exp((t_marginal - self.log_ma[:, None]).clamp(max=MAX_EXPONENT)).mean(
            1
        )


def gather_rows(t: Tensor, perm: Tensor) -> Tensor:
    """t[r, perm[r]] for t [R, B, ...] and perm [R, B]."""
    index = perm.reshape(*perm.shape, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
    return t.gather(1, index)


def label_scores(net: StackedModule, u: Tensor, y: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """:meth:`ibcore.core.critics.LabelCritic.scores` per run."""
    table = net(u.flatten(2))
    joint = table.gather(2, y[..., None]).squeeze(2)
    marginal = table.gather(2, y.gather(1, perm)[..., None]).squeeze(2)
    return joint, marginal


def tied_scores(log_scale: Tensor, d2: Tensor, perm: Tensor, feature_dim: int) -> tuple[Tensor, Tensor]:
    """:meth:`ibcore.core.critics.TiedMixtureCritic.scores_from_distances` per run."""
    a = log_scale.exp() / feature_dim
    logits = -a[:, None, None] * d2
    log_mixture = batched_floored_logsumexp(logits) - math.log(d2.shape[2])
    joint = logits.diagonal(dim1=1, dim2=2) - log_mixture
    marginal = logits.gather(1, perm[:, None, :]).squeeze(1) - log_mixture.gather(1, perm)
    return joint, marginal


@torch.no_grad()
def tied_initial_scale(h: Tensor, z: Tensor, feature_dim: int) -> Tensor:
    """The tied critic's first-batch log-scale per run (``TiedMixtureCritic.ensure_scale``)."""
    joint = (h - z).pow(2).mean((1, 2))
    marginal = (h - z.roll(1, 1)).pow(2).mean((1, 2))
    return torch.log(feature_dim / (2 * torch.maximum(joint, 1e-6 * marginal + 1e-12)))


def _param_groups(named: dict[str, Tensor], lr: float, copy_factor: float) -> list[dict]:
    """:func:`ibcore.core.critics.critic_param_groups` for stacked parameters."""
    groups: dict[float, list[Tensor]] = {}
    for name, p in named.items():
        factor = (
            SCALE_LR_FACTOR
            if name in ("log_scale", "log_spread")
            else copy_factor
            if name.startswith("copy.")
            else 1.0
        )
        groups.setdefault(factor, []).append(p)
    return [{"params": ps, "lr": lr * f} for f, ps in groups.items()]


def stacked_adam(params: list, lr: float, capture: bool = False) -> torch.optim.Adam:
    """Adam over stacked tensors: each run's Adam (fused where the device has it; ``capture``:
    the step count kept on the device, as a CUDA graph needs)."""
    first = params[0]["params"][0] if isinstance(params[0], dict) else params[0]
    fused = True if first.device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(params, lr=lr, fused=fused, capturable=capture and first.device.type == "cuda")


class StackedAAMine:
    """:class:`ibcore.core.penalties.AAMinePenalty` of R runs, stacked (its copy of block i, the
    log-scales, centre, low-rank term and marginal MLP per run)."""

    def __init__(self, penalties: Sequence[AAMinePenalty], lr: float, capture: bool) -> None:
        self.penalties = list(penalties)
        critics = [p.critic for p in penalties]
        self.tied = penalties[0].tied
        self.feature_dim = critics[0].feature_dim
        self.copy = None if self.tied else StackedModule([c.copy for c in critics])
        self.marginal_term = StackedModule([c.marginal_term for c in critics])
        self.quadratic = StackedModule([c.quadratic for c in critics])
        self.scalars = {
            n: torch.stack([getattr(c, n).detach() for c in critics]).requires_grad_(True)
            for n in ("log_scale", "log_spread", "center")
        }
        named = {**self.scalars}
        named |= {f"marginal_term.{n}": p for n, p in self.marginal_term.params.items()}
        named |= {f"quadratic.{n}": p for n, p in self.quadratic.params.items()}
        if self.copy is not None:
            named |= {f"copy.{n}": p for n, p in self.copy.params.items()}
        self.opt = stacked_adam(_param_groups(named, lr, copy_factor=1.0), lr, capture)
        self.ma = StackedMovingAverage()
        self.ready = False

    def copy_output(self, h_prev: Tensor, l: Tensor) -> Tensor:  # noqa: E741
        if self.tied:
            return l.detach()
        with torch.no_grad():
            return self.copy(h_prev)

    @torch.no_grad()
    def _initialise(self, h: Tensor, z: Tensor) -> None:
        d = self.feature_dim
        joint = (h - z).pow(2).mean((1, 2))
        marginal = (h - z.roll(1, 1)).pow(2).mean((1, 2))
        v = torch.maximum(joint, 1e-6 * marginal + 1e-12)
        self.scalars["log_scale"].copy_(torch.log(d / (2 * v)))
        mean = z.mean(1, keepdim=True)
        self.scalars["center"].copy_(mean.squeeze(1))
        spread = (z - mean).pow(2).mean((1, 2)) + 1e-12
        self.scalars["log_spread"].copy_(torch.log(d / (2 * spread)))
        self.ready = True

    def scores(self, h: Tensor, z: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
        h, z = h.flatten(2), z.flatten(2)
        if not self.ready:  # the first batch of the layer (known on the host: no sync)
            self._initialise(h, z)
        d = self.feature_dim
        scale = self.scalars["log_scale"].exp() / d
        zc = z - self.scalars["center"][:, None]
        g = (
            (self.scalars["log_spread"].exp() / d)[:, None] * zc.pow(2).sum(2)
            + self.quadratic(zc).pow(2).sum(2)
            + self.marginal_term(z).squeeze(2)
        )
        joint = -scale[:, None] * (h - z).pow(2).sum(2) + g
        marginal = -scale[:, None] * (h - gather_rows(z, perm)).pow(2).sum(2) + g.gather(1, perm)
        return joint, marginal

    def train_critic(self, h_prev: Tensor, l_fixed: Tensor, noise: Tensor, perm: Tensor) -> None:
        z = l_fixed + noise
        h = l_fixed if self.tied else self.copy(h_prev)
        surrogate = self.ma.surrogate(*self.scores(h, z, perm))
        self.opt.zero_grad(set_to_none=True)
        (-surrogate.sum()).backward()
        self.opt.step()

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        return batched_dv_bound(*self.scores(self.copy_output(h_prev, l), l + noise, perm))

    @torch.no_grad()
    def write_back(self) -> None:
        critics = [p.critic for p in self.penalties]
        if self.copy is not None:
            self.copy.write_back([c.copy for c in critics])
        self.marginal_term.write_back([c.marginal_term for c in critics])
        self.quadratic.write_back([c.quadratic for c in critics])
        for r, c in enumerate(critics):
            for n, p in self.scalars.items():
                getattr(c, n).copy_(p[r])
            c.scale_initialised.fill_(True)
            c._scale_ready = True


def batched_closed_penalty(name: str, l: Tensor, sigma: Tensor, weights: list[Tensor]) -> Tensor:  # noqa: E741
    """The closed-form penalties of :mod:`ibcore.core.penalties` per run: [R]."""
    if name == "pairwise_kl":
        h = l.flatten(2)
        b = h.shape[1]
        d2 = batched_squared_distances(h, h)
        d2 = d2 * (1 - torch.eye(b, dtype=d2.dtype, device=d2.device))
        return -(torch.logsumexp(-d2 / (2.0 * sigma**2)[:, None, None], dim=2) - math.log(b)).mean(1)
    if name == "logdet":
        from ibcore.core.critics import gaussian_logdet

        return torch.func.vmap(gaussian_logdet, in_dims=(0, 0))(l, sigma)
    if name == "weight_decay":
        return sum(w.pow(2).sum(tuple(range(1, w.dim()))) for w in weights)
    raise ValueError(f"no batched form of penalty {name!r}")


# -- fewer launches ------------------------------------------------------------------------


class Replayable:
    """``fn(*inputs)`` run eagerly, or with ``capture`` (CUDA only) recorded once as a CUDA graph
    after ``warmup`` eager calls and then replayed on static copies of the inputs.

    ``fn`` must update its state in place and must not branch on tensor values; it returns
    nothing. A capture that fails falls back to eager calls (named in ``self.note``)."""

    def __init__(self, fn: Callable[..., None], capture: bool = False, warmup: int = 3) -> None:
        self.fn, self.warmup, self.calls = fn, warmup, 0
        self.capture = capture
        self.graph: Any = None
        self.static: list[Tensor] = []
        self.note = ""

    def __call__(self, *inputs: Tensor) -> None:
        self.calls += 1
        if not self.capture:
            self.fn(*inputs)
            return
        if self.calls <= self.warmup:  # eager warm-up on a side stream, as CUDA graphs require
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return
        if self.graph is None:
            try:
                self.static = [x.clone() for x in inputs]
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self.fn(*self.static)
                self.graph = graph
            except Exception as err:  # noqa: BLE001 - any capture failure: run eagerly instead
                self.capture, self.graph = False, None
                self.note = f"CUDA graph capture failed ({type(err).__name__}: {err}); eager steps"
                self.fn(*inputs)
                return
        for s, x in zip(self.static, inputs, strict=True):
            s.copy_(x)
        self.graph.replay()


# -- cross-entropy --------------------------------------------------------------------------


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
                if c.measure_steps:
                    i_x, i_y = measure_information(net, data, c, device, gen)
                    cv["I_x"].append(i_x)
                    cv["I_y"].append(i_y)
                    reps = net.representations(data.x_train[: min(n, EVAL_SAMPLES)])
                    pairs = [exact_bounds(rep, c.sigma) for rep in reps]
                    append_bounds(cv, [p[0] for p in pairs], [p[1] for p in pairs])
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
                "timings": _group_timings(elapsed, len(configs), c.steps, runner),
            }
        )
    return outs


def _group_timings(elapsed: float, size: int, steps: int, runner: Replayable | None = None) -> dict:
    """A run's share of the group's wall time (``train_seconds``) and the group's own."""
    out = {
        "train_seconds": elapsed / size,
        "seconds_per_step": elapsed / size / steps,
        "group_size": size,
        "group_train_seconds": elapsed,
    }
    if runner is not None and runner.note:
        out["note"] = runner.note
    return out


# -- layer-by-layer IB ----------------------------------------------------------------------


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
        self.layers: list[dict] = []
        self.failure: dict | None = None
        for p in self.model.parameters():
            p.requires_grad_(False)


def _new_record(i: int, config: TrainConfig) -> dict:
    record: dict = {
        "layer": i, "step": [], "I_x": [], "I_y": [], "probe_test_accuracy": [], "I_x_kl_upper": [],
        "I_x_bhattacharyya_lower": [], "sigma": [], "rms_radius": [], "active_fraction": [],
    }  # fmt: skip
    if config.beta > 0:
        record["penalty_value"] = []
    if config.val_size > 0:
        record["probe_val_accuracy"] = []
    return record


def _first_non_finite(values: dict[str, float | None]) -> tuple[str, float] | None:
    for name, v in values.items():
        if v is not None and not math.isfinite(v):
            return name, v
    return None


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
        m_gen = side_generator(device, c.seed, "measure", i, step) if run.side else run.gen
        h_eval, y_eval = run.h_prev_all[run.eval_idx], run.data.y_train[run.eval_idx]
        with torch.no_grad():
            l_eval = block(h_eval)
            noise_eval = sigma * torch.randn(l_eval.shape, generator=m_gen, device=device)
            perm_eval = marginal_permutation(l_eval.shape[0], m_gen)
            i_x_t, i_y_t = objective.bounds_on(l_eval, y_eval, noise_eval, perm_eval)
            i_x, i_y = float(i_x_t), float(i_y_t)
            penalty_value = None
            if penalty is not None:
                penalty_value = float(penalty.value(h_eval, l_eval, noise_eval, perm_eval))
            elif c.beta > 0:
                penalty_value = i_x
            upper = lower = None
            if sigma > 0:
                lower, upper = exact_bounds(l_eval, sigma)
            radius, active = layer_statistics(block, l_eval)
        bad = _first_non_finite(
            {
                f"I(X;L_{i}+eps)": i_x,
                f"I(Y;L_{i})": i_y,
                f"penalty {c.penalty}": penalty_value,
                "RMS radius": radius,
            }
        )
        if bad is not None:
            run.failure = {"layer": i, "step": step, "quantity": bad[0], "value": repr(bad[1])}
            return
        for key, value in (
            ("step", step), ("I_x", i_x), ("I_y", i_y), ("I_x_kl_upper", upper),
            ("I_x_bhattacharyya_lower", lower), ("sigma", sigma), ("rms_radius", radius),
            ("active_fraction", active),
        ):  # fmt: skip
            record[key].append(value)
        if c.beta > 0:
            record["penalty_value"].append(penalty_value)
        if c.checkpoint_probe_steps:
            features = apply_in_chunks(block, run.h_prev_all)
            if run.side:
                accs = probe_report(
                    run.model.prefix(i), run.data, c.checkpoint_probe_steps, c.probe_lr,
                    side_generator(device, c.seed, "probe", i, step), train_features=features,
                )  # fmt: skip
                record["probe_val_accuracy"].append(accs["val"])
                record["probe_test_accuracy"].append(accs["test"])
            else:
                _, test_acc = probe_accuracies(
                    run.model.prefix(i), run.data, c.checkpoint_probe_steps, c.probe_lr, run.gen,
                    train_features=features,
                )  # fmt: skip
                record["probe_test_accuracy"].append(test_acc)


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
        records = [_new_record(i, r.config) for r in active]
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
        timings = _group_timings(train_elapsed, len(runs), c.steps * max(1, len(run.layers)))
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


# -- entry points ---------------------------------------------------------------------------


def check_group(configs: Sequence[TrainConfig], datas: Sequence[Dataset]) -> None:
    """Raise ValueError unless the runs may share a group and each run's data fit its config."""
    if not configs:
        raise ValueError("a group needs at least one run")
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError(f"these runs differ in more than {PER_RUN}: group them with group_configs")
    if len(datas) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(datas)} data sets")
    for c, d in zip(configs, datas, strict=True):
        if d.name != c.dataset:
            raise ValueError(f"config is for {c.dataset!r} but data holds {d.name!r}")
        n_val = 0 if d.x_val is None else d.x_val.shape[0]
        if n_val != c.val_size:
            raise ValueError(f"config.val_size = {c.val_size} but data holds a validation split of {n_val}")
    if len({d.x_train.shape for d in datas}) != 1:
        raise ValueError("the runs' training sets differ in shape")


def train_group(
    configs: Sequence[TrainConfig], datas: Sequence[Dataset], device: torch.device, capture: bool = False
) -> list[dict]:
    """Train a group (see :func:`group_configs`); returns one result per run, as
    :func:`ibcore.core.training.train` returns."""
    check_group(configs, datas)
    trainer = train_ce_group if configs[0].method == "ce" else train_ib_group
    return trainer(configs, datas, device, capture=capture)


def run_groups(
    configs: Iterable[TrainConfig],
    results_dir: str | Path,
    device: torch.device,
    data_for: Callable[[TrainConfig], Dataset],
    kind: str = "table1",
    max_group: int = 0,
    capture: bool = False,
    on_group: Callable[[list[TrainConfig], list[dict], float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    save_models: bool = False,
) -> list[dict]:
    """Run every config not yet stored under ``results_dir`` in groups and return all records.

    Each run's record has the path and format that ``ibcore.experiments.table1.run_configs``
    writes (``data_for`` gives a run's data, e.g. ``table1.DataCache(...).get``) and is stored as
    soon as its group ends; a group with some runs stored trains only the rest. ``on_group``
    is called with (configs, records, seconds) after each group; ``stop()`` true before a group
    skips the groups left; ``save_models`` keeps each net's weights beside its record."""
    configs = list(configs)
    stored = {id(c): read_record(results_dir, kind, c.to_dict(), save_models) for c in configs}
    todo = [c for c in configs if stored[id(c)] is None]
    for group in group_configs(todo, max_size=max_group):
        if stop is not None and stop():
            break
        datas = [data_for(c) for c in group]
        t0 = time.perf_counter()
        outs = train_group(group, datas, device, capture=capture)
        written = []
        for c, d, out in zip(group, datas, outs, strict=True):
            model = out.pop("model")
            if save_models:
                atomic_torch_save(model.state_dict(), model_path(results_dir, kind, c.to_dict()))
            record = {"kind": kind, "config": c.to_dict(), **out}
            record |= {"environment": environment(device), "data_source": d.source}
            write_record(results_dir, record)
            stored[id(c)] = read_record(results_dir, kind, c.to_dict(), save_models)
            written.append(stored[id(c)])
        if on_group is not None:
            on_group(group, written, time.perf_counter() - t0)
    return [stored[id(c)] for c in configs if stored[id(c)] is not None]
