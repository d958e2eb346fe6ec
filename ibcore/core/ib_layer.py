"""One layer of IB training (Eq. 2, Sec. 4): the statistics networks of I(Y; L_i) and
I(X; L_i + eps) (:class:`LayerObjective`), the batch, the alternating step, and the layer's
noise scale and statistics."""

from __future__ import annotations

import math

import torch
from torch import nn

from ibcore.core.config import TrainConfig
from ibcore.core.critics import (
    LabelCritic,
    TiedMixtureCritic,
    critic_param_groups,
    squared_distances,
)
from ibcore.core.dv import MovingAverageDV, dv_bound
from ibcore.core.estimators import marginal_permutation
from ibcore.core.penalties import Penalty
from ibcore.core.runstate import adam


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


def ib_iteration(
    block: nn.Module,
    layer_params: list[nn.Parameter],
    opt_layer: torch.optim.Optimizer,
    objective: LayerObjective,
    penalty: Penalty | None,
    h_prev_all: torch.Tensor,
    y_all: torch.Tensor,
    feature_shape: tuple[int, ...],
    config: TrainConfig,
    gen: torch.Generator,
    aux_gen: torch.Generator,
    sigma: float,
) -> None:
    """One iteration of :func:`ibcore.core.training.train_ib_layerwise`'s loop (the body the
    benchmark times): a batch from ``gen``, then :func:`ib_step` (tied critic, or beta = 0) or
    :func:`ib_step_penalty` with ``config.critic_steps - 1`` extra critic batches from ``aux_gen``
    (a penalty with a statistics network of its own)."""
    h_prev, y, perm, noise = ib_batch(h_prev_all, y_all, feature_shape, config, gen, sigma)
    if penalty is None:
        ib_step(block, layer_params, opt_layer, objective, h_prev, y, perm, noise, config.beta)
        return
    extra = []
    for _ in range(config.critic_steps - 1 if penalty.has_critic else 0):
        h_x, _, perm_x, noise_x = ib_batch(h_prev_all, y_all, feature_shape, config, aux_gen, sigma)
        extra.append((h_x, noise_x, perm_x))
    ib_step_penalty(
        block, layer_params, opt_layer, objective, penalty, h_prev, y, perm, noise, config.beta,
        extra_batches=extra,
    )  # fmt: skip


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


class CollapsedLayer(ValueError):
    """The layer's outputs coincide (median nearest-neighbour distance 0), so a noise scale
    relative to it does not exist: the run has collapsed."""

    def __init__(self, layer: int, scale: float) -> None:
        super().__init__(
            f"layer {layer}: median nearest-neighbour distance is {scale}, so sigma_mode 'layer_scaled' "
            "gives no noise scale; use sigma_mode 'absolute'"
        )
        self.layer, self.scale = layer, scale


def layer_sigma(config: TrainConfig, block: nn.Module, h_prev_eval: torch.Tensor, layer: int) -> float:
    """The noise std of layer ``layer``: ``config.sigma`` ("absolute"), or ``config.sigma`` times
    the median nearest-neighbour distance of the layer's output on the (up to 2048) evaluation
    images ("layer_scaled"), measured when the layer starts."""
    if config.sigma_mode == "absolute":
        return config.sigma
    with torch.no_grad():
        scale = median_nn_distance(block(h_prev_eval))
    if not (math.isfinite(scale) and scale > 0):
        raise CollapsedLayer(layer, scale)
    return config.sigma * scale
