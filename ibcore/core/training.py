"""Trainers: cross-entropy end to end, and layer by layer with the IB functional (Sec. 4).

Both return the parts of a results record (``metrics``, ``curves``, ``timings``) and can
resume from a checkpoint file written atomically at every checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ibcore.core.bounds import mixture_mi_bounds
from ibcore.core.config import TrainConfig
from ibcore.core.critics import (
    LabelCritic,
    TiedMixtureCritic,
    critic_param_groups,
    squared_distances,
)
from ibcore.core.data import Dataset
from ibcore.core.dv import MovingAverageDV, dv_bound
from ibcore.core.estimators import check_finite, marginal_permutation
from ibcore.core.models import LayerStack, build_model
from ibcore.core.penalties import Penalty, make_penalty
from ibcore.core.results import atomic_torch_save, checked_state, quarantine

EVAL_SAMPLES = 2048


def make_model(config: TrainConfig, data: Dataset) -> LayerStack:
    """The net of ``config`` for ``data``, initialised from ``config.seed``."""
    torch.manual_seed(config.seed)
    if config.arch == "mlp":
        return build_model("mlp", widths=config.widths)
    return build_model(
        "convnet",
        in_channels=data.x_train.shape[1],
        channels=config.channels,
        image_size=data.x_train.shape[-1],
        num_outputs=data.num_classes,
    )


@torch.no_grad()
def apply_in_chunks(module: nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """module(x) without autograd, in chunks of ``chunk`` samples."""
    return torch.cat([module(x[k : k + chunk]) for k in range(0, x.shape[0], chunk)])


@torch.no_grad()
def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose arg-max output equals the label."""
    return float((apply_in_chunks(module, x).argmax(1) == y).float().mean())


def train_linear_probe(
    train_features: torch.Tensor,
    y_train: torch.Tensor,
    num_classes: int,
    steps: int,
    lr: float,
    gen: torch.Generator,
    batch_size: int = 256,
) -> nn.Linear:
    """One linear layer on frozen features, trained with cross-entropy (Sec. 4)."""
    feats = train_features.detach().flatten(1)
    torch.manual_seed(int(torch.randint(2**62, (), generator=gen, device=gen.device)))  # init from gen
    probe = nn.Linear(feats.shape[1], num_classes).to(feats.device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    batch = min(batch_size, feats.shape[0])
    for _ in range(steps):
        idx = torch.randint(feats.shape[0], (batch,), generator=gen, device=feats.device)
        loss = F.cross_entropy(probe(feats[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return probe


def probe_accuracies(
    net: nn.Module,
    data: Dataset,
    steps: int,
    lr: float,
    gen: torch.Generator,
    train_features: torch.Tensor | None = None,
) -> tuple[float, float]:
    """(train, test) accuracy of :func:`probe_report` (``train_features``, when given, is
    ``net(data.x_train)`` computed already: layer-wise training holds it)."""
    report = probe_report(net, data, steps, lr, gen, train_features)
    return report["train"], report["test"]


def probe_report(
    net: nn.Module,
    data: Dataset,
    steps: int,
    lr: float,
    gen: torch.Generator,
    train_features: torch.Tensor | None = None,
) -> dict[str, float]:
    """Accuracy of a linear probe post-trained on the frozen ``net``'s output on the training
    set, on the test set and, when ``data`` holds one, on the validation split (key "val")."""
    if train_features is None:
        train_features = apply_in_chunks(net, data.x_train)
    train_f = train_features.flatten(1)
    probe = train_linear_probe(train_f, data.y_train, data.num_classes, steps, lr, gen)
    out = {
        "train": accuracy(probe, train_f, data.y_train),
        "test": accuracy(probe, apply_in_chunks(net, data.x_test).flatten(1), data.y_test),
    }
    if data.x_val is not None:
        out["val"] = accuracy(probe, apply_in_chunks(net, data.x_val).flatten(1), data.y_val)
    return out


def side_generator(device: torch.device, *key: object) -> torch.Generator:
    """A generator for work beside training (probes, measurements, extra critic batches), seeded
    from ``key`` (the run's seed first) alone, so that it draws nothing from the training stream."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def measure_information(
    model: LayerStack, data: Dataset, config: TrainConfig, device: torch.device, gen: torch.Generator
) -> tuple[list[float], list[float]]:
    """Per layer (I(X; L_i + eps), I(Y; L_i)) of a frozen net, with the statistics networks of
    IB training (:class:`LayerObjective`) trained for ``config.measure_steps`` steps."""
    eval_n = min(data.x_train.shape[0], EVAL_SAMPLES)
    reps = model.representations(data.x_train)
    i_x, i_y = [], []
    n = data.x_train.shape[0]
    for rep in reps:
        torch.manual_seed(int(torch.randint(2**62, (), generator=gen, device=gen.device)))  # init from gen
        objective = LayerObjective(rep[0].numel(), data.num_classes, config, device)
        for _ in range(config.measure_steps):
            idx = torch.randint(n, (config.batch_size,), generator=gen, device=device)
            perm = marginal_permutation(config.batch_size, gen)
            objective.critic_step(rep[idx], data.y_train[idx], perm, config.sigma, gen)
        bx, by = objective.bounds(nn.Identity(), rep[:eval_n], data.y_train[:eval_n], config.sigma, gen)
        i_x.append(bx)
        i_y.append(by)
    return i_x, i_y


def exact_bounds(features: torch.Tensor, sigma: float) -> tuple[float, float]:
    """(Bhattacharyya lower, pairwise-KL upper) bound on I(X; L + eps), X uniform over the rows of
    ``features`` (the layer output on the evaluation samples), eps ~ N(0, sigma^2 I); no RNG."""
    return mixture_mi_bounds(features.flatten(1), sigma**2)


def append_bounds(curve: dict, lower: Any, upper: Any) -> None:
    """Append the exact bounds of the checkpoint just recorded in ``curve`` (lists ``I_x_lower``,
    ``I_x_upper`` aligned with ``curve["step"]``; None-padded for a run resumed from a checkpoint
    written before the bounds were stored)."""
    for key, value in (("I_x_lower", lower), ("I_x_upper", upper)):
        values = curve.setdefault(key, [])
        values.extend([None] * (len(curve["step"]) - 1 - len(values)))
        values.append(value)


class Checkpointer:
    """Saves and restores a run's state at ``path`` (no-op when ``path`` is None).

    A checkpoint holds tensors and plain data only and is read with ``weights_only=True``. One
    that cannot be read (truncated), needs more than that (refused: it could run code), or was
    written for another run (its ``run_id`` differs from the file name's) is named in one line
    and moved to the results folder's ``quarantine/``; the run then starts afresh."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None

    def _run_id(self) -> str:
        assert self.path is not None
        return self.path.name.split(".")[0]

    def load(self) -> dict | None:
        if self.path is None or not self.path.is_file():
            return None
        state = checked_state(self.path, "checkpoint")
        if state is None:
            return None
        if not isinstance(state, dict) or state.get("run_id", self._run_id()) != self._run_id():
            owner = state.get("run_id") if isinstance(state, dict) else type(state).__name__
            quarantine(self.path, f"checkpoint of run {owner}, not of {self._run_id()}")
            return None
        return state

    def save(self, state: dict) -> None:
        if self.path is not None:
            atomic_torch_save({**state, "run_id": self._run_id()}, self.path)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _gen_state(gen: torch.Generator) -> torch.Tensor:
    return gen.get_state().clone()


#: Devices where Adam runs its fused kernel (one pass over each tensor instead of ~6).
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(params: list, lr: float) -> torch.optim.Adam:
    """Adam at ``lr`` over ``params`` (tensors or parameter groups); the fused implementation
    where the device has one (the same update rule; on the CPU 2-3x faster than the loop)."""
    first = params[0]["params"][0] if isinstance(params[0], dict) else params[0]
    fused = True if first.device.type in FUSED_ADAM_DEVICES else None
    return torch.optim.Adam(params, lr=lr, fused=fused)


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


class LayerObjective:
    """Statistics networks and moving averages for training layer i on Eq. (2)."""

    def __init__(self, feature_dim: int, num_classes: int, config: TrainConfig, device: torch.device) -> None:
        self.critic_y = LabelCritic(feature_dim, num_classes, config.critic_hidden).to(device)
        self.critic_x = TiedMixtureCritic(feature_dim).to(device)
        self.opt = adam(
            critic_param_groups(self.critic_y, config.critic_lr)
            + critic_param_groups(self.critic_x, config.critic_lr),
            config.critic_lr,
        )
        self.ma_y = MovingAverageDV()
        self.ma_x = MovingAverageDV()

    def state_dict(self) -> dict:
        return {
            "critic_y": self.critic_y.state_dict(),
            "critic_x": self.critic_x.state_dict(),
            "opt": self.opt.state_dict(),
            "ma_y": self.ma_y.state_dict(),
            "ma_x": self.ma_x.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.critic_y.load_state_dict(state["critic_y"])
        self.critic_x.load_state_dict(state["critic_x"])
        self.critic_x._scale_ready = False
        self.opt.load_state_dict(state["opt"])
        self.ma_y.load_state_dict(state["ma_y"])
        self.ma_x.load_state_dict(state["ma_x"])

    def critic_step(
        self,
        l_fixed: torch.Tensor,
        y: torch.Tensor,
        perm: torch.Tensor,
        sigma: float,
        gen: torch.Generator,
        noise: torch.Tensor | None = None,
    ) -> None:
        """One ascent step of both statistics networks on their DV bounds, layer output fixed."""
        if noise is None:
            noise = sigma * torch.randn(l_fixed.shape, generator=gen, device=l_fixed.device)
        with torch.no_grad():
            h = l_fixed.flatten(1)
            z = h + noise.flatten(1)
            self.critic_x.ensure_scale(h, z)
            d2 = squared_distances(z, h)
        self.critic_update(l_fixed, y, perm, d2)

    def critic_update(
        self, l_fixed: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, d2_fixed: torch.Tensor
    ) -> None:
        """The step of :meth:`critic_step` given the fixed squared distances
        d2[k, j] = ||l_k + eps_k - l_j||^2 of the noisy to the clean layer outputs."""
        sur_y = self.ma_y.surrogate(*self.critic_y.scores(l_fixed, y, perm))
        sur_x = self.ma_x.surrogate(*self.critic_x.scores_from_distances(d2_fixed, perm))
        self.opt.zero_grad(set_to_none=True)
        (-(sur_y + sur_x)).backward()
        self.opt.step()

    @torch.no_grad()
    def bounds(
        self, block: nn.Module, h_prev: torch.Tensor, y: torch.Tensor, sigma: float, gen: torch.Generator
    ) -> tuple[float, float]:
        """(I(X; L_i + eps), I(Y; L_i)) DV bounds of the current critics on a fixed sample."""
        l = block(h_prev)  # noqa: E741
        noise = sigma * torch.randn(l.shape, generator=gen, device=l.device)
        perm = marginal_permutation(l.shape[0], gen)
        i_x, i_y = self.bounds_on(l, y, noise, perm)
        return float(i_x), float(i_y)

    @torch.no_grad()
    def bounds_on(
        self,
        l: torch.Tensor,  # noqa: E741
        y: torch.Tensor,
        noise: torch.Tensor,
        perm: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(I(X; L_i + eps), I(Y; L_i)) of :meth:`bounds` given the layer output, noise and
        permutation, as tensors (no host sync)."""
        i_y = dv_bound(*self.critic_y.scores(l, y, perm))
        i_x = dv_bound(*self.critic_x.scores_from_features(l, l + noise, perm))
        return i_x, i_y


def ib_layer_setup(
    block: nn.Module, h_prev_all: torch.Tensor, num_classes: int, config: TrainConfig
) -> tuple[tuple[int, ...], list[nn.Parameter], torch.optim.Optimizer, LayerObjective]:
    """Make ``block`` trainable and return what IB training of it needs: (shape of its output
    per sample, its parameters, its optimizer, the statistics networks)."""
    for p in block.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        feature_shape = tuple(block(h_prev_all[:2]).shape[1:])
    objective = LayerObjective(math.prod(feature_shape), num_classes, config, h_prev_all.device)
    opt_layer = adam(list(block.parameters()), config.lr)
    return feature_shape, list(block.parameters()), opt_layer, objective


def ib_batch(
    h_prev_all: torch.Tensor,
    y_all: torch.Tensor,
    feature_shape: tuple[int, ...],
    config: TrainConfig,
    gen: torch.Generator,
    sigma: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of IB training: (L_{i-1}, y, marginal permutation, noise eps of shape L_i).

    ``sigma`` is the noise std of this layer (default ``config.sigma``); the draws from ``gen``
    do not depend on it."""
    device = h_prev_all.device
    sigma = config.sigma if sigma is None else sigma
    idx = torch.randint(h_prev_all.shape[0], (config.batch_size,), generator=gen, device=device)
    perm = marginal_permutation(config.batch_size, gen)
    # sigma * randn in one pass: normal_ draws the same standard normals as randn
    noise = torch.empty((config.batch_size, *feature_shape), device=device).normal_(0.0, sigma, generator=gen)
    return h_prev_all[idx], y_all[idx], perm, noise


def ib_step(
    block: nn.Module,
    layer_params: list[nn.Parameter],
    opt_layer: torch.optim.Optimizer,
    objective: LayerObjective,
    h_prev: torch.Tensor,
    y: torch.Tensor,
    perm: torch.Tensor,
    noise: torch.Tensor,
    beta: float,
) -> None:
    """One alternation of IB training of layer ``block`` (the body of
    :func:`train_ib_layerwise`'s loop, shared with :mod:`ibcore.bench`).

    (a) the statistics networks ascend their DV bounds with the layer fixed, then (b) the
    layer ascends I(Y;L_i) - beta I(X;L_i+eps), each term the batch DV bound of the critics
    as (a) left them. The layer does not change between (a) and (b), so its output l and the
    squared distances ||l_k + eps_k - l_j||^2 of the tied AA-MINE critic are computed once,
    with autograd: (a) reads them detached; the critics' own terms are recomputed in (b) with
    their updated parameters.
    """
    l = block(h_prev)  # noqa: E741
    l_fixed = l.detach()
    critic_x = objective.critic_x
    with torch.set_grad_enabled(beta > 0):  # I(X;L_i+eps) reaches the layer only when beta > 0
        h = l.flatten(1)
        z = h + noise.flatten(1)
        critic_x.ensure_scale(h.detach(), z.detach())
        d2 = squared_distances(z, h)
    d2_fixed = d2.detach()
    # (a) statistics networks ascend their DV bounds, layer fixed
    objective.critic_update(l_fixed, y, perm, d2_fixed)
    # (b) the layer ascends I(Y;L_i) - beta I(X;L_i+eps), critics fixed at their new values
    goal = dv_bound(*objective.critic_y.scores(l, y, perm))
    if beta > 0:
        goal = goal - beta * dv_bound(*critic_x.scores_from_distances(d2, perm))
    grads = torch.autograd.grad(-goal, layer_params)
    for p, g in zip(layer_params, grads, strict=True):
        p.grad = g
    opt_layer.step()


def ib_step_penalty(
    block: nn.Module,
    layer_params: list[nn.Parameter],
    opt_layer: torch.optim.Optimizer,
    objective: LayerObjective,
    penalty: Penalty,
    h_prev: torch.Tensor,
    y: torch.Tensor,
    perm: torch.Tensor,
    noise: torch.Tensor,
    beta: float,
    extra_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = (),
) -> None:
    """:func:`ib_step` with a penalty other than "tied" (:mod:`ibcore.core.penalties`), beta > 0.

    (a) the statistics networks of I(Y;L_i) and of the recorded I(X;L_i+eps) (the tied critic,
    trained exactly as in :func:`ib_step` but not acting on the layer) ascend with the layer
    fixed, and the penalty's own statistics network makes one update on each batch of
    ``extra_batches`` ((L_{i-1}, eps, perm) drawn beside the training stream) and then one on
    this batch; (b) the layer ascends I(Y;L_i) - beta * penalty, critics fixed.
    """
    l = block(h_prev)  # noqa: E741
    l_fixed = l.detach()
    critic_x = objective.critic_x
    with torch.no_grad():
        h = l_fixed.flatten(1)
        z = h + noise.flatten(1)
        critic_x.ensure_scale(h, z)
        d2_fixed = squared_distances(z, h)
    objective.critic_update(l_fixed, y, perm, d2_fixed)
    if penalty.has_critic:
        for h_extra, noise_extra, perm_extra in extra_batches:
            with torch.no_grad():
                l_extra = block(h_extra)
            penalty.train_critic(h_extra, l_extra, noise_extra, perm_extra)
        penalty.train_critic(h_prev, l_fixed, noise, perm)
    goal = dv_bound(*objective.critic_y.scores(l, y, perm)) - beta * penalty.value(h_prev, l, noise, perm)
    grads = torch.autograd.grad(-goal, layer_params)
    for p, g in zip(layer_params, grads, strict=True):
        p.grad = g
    opt_layer.step()


@torch.no_grad()
def median_nn_distance(h: torch.Tensor) -> float:
    """Median over the rows of ``h`` of the Euclidean distance to the nearest other row."""
    h = h.flatten(1)
    d2 = squared_distances(h, h)
    d2.fill_diagonal_(math.inf)
    return float(d2.amin(1).median().sqrt())


@torch.no_grad()
def layer_statistics(block: nn.Module, l: torch.Tensor) -> tuple[float, float | None]:  # noqa: E741
    """(RMS radius sqrt(mean ||h - mean h||^2), fraction of outputs > 0) of the layer output
    ``l``; the fraction is None for a block without a ReLU (the linear last layer)."""
    h = l.flatten(1)
    radius = float((h - h.mean(0)).pow(2).sum(1).mean().sqrt())
    has_relu = any(isinstance(m, nn.ReLU) for m in block.modules())
    return radius, (float((h > 0).float().mean()) if has_relu else None)


def layer_sigma(config: TrainConfig, block: nn.Module, h_prev_eval: torch.Tensor, layer: int) -> float:
    """The noise std of layer ``layer``: ``config.sigma`` ("absolute"), or ``config.sigma`` times
    the median nearest-neighbour distance of the layer's output on the (up to 2048) evaluation
    images ("layer_scaled"), measured when the layer starts."""
    if config.sigma_mode == "absolute":
        return config.sigma
    with torch.no_grad():
        scale = median_nn_distance(block(h_prev_eval))
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(
            f"layer {layer}: median nearest-neighbour distance is {scale}, so sigma_mode 'layer_scaled' "
            "gives no noise scale; use sigma_mode 'absolute'"
        )
    return config.sigma * scale


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
