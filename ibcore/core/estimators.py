"""Neural mutual-information estimators with one interface: ``estimate(u, v) -> Estimate``.

- :class:`MINE` (Belghazi et al. 2018) on a pair of continuous variables,
- :class:`LabelMINE`, MINE for a discrete label (used for I(Y; L_i)),
- :class:`AAMINE`, the architecture-aware MINE of Sec. 3 for I(X; F_i(X) + eps).

Each trains a statistics network on the DV bound (Eq. 6) with the moving-average gradient
correction on one part of the samples and reports the DV bound on the held-out rest.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ibcore.core.critics import (
    COPY_LR_FACTOR,
    ArchitectureAwareCritic,
    ConcatCritic,
    LabelCritic,
    TiedMixtureCritic,
    critic_param_groups,
)
from ibcore.core.dv import MovingAverageDV, dv_bound
from ibcore.core.penalties import AAMinePenalty
from ibcore.core.runtime import resolve_device


class EstimationError(FloatingPointError):
    """An estimate came out NaN: the statistics network diverged."""


@dataclass
class Estimate:
    """An MI estimate in nats and the training curve that led to it.

    ``value`` is the bound on held-out samples; ``curve`` the training bound at ``curve_steps``.
    :func:`ibcore.estimate_mi` also fills the fields below it: the method and its bound, a
    bootstrap confidence interval over held-out batches, the validation curve that early
    stopping watched, the step training stopped at and the step whose critic was kept.
    """

    value: float
    curve_steps: list[int] = field(default_factory=list)
    curve: list[float] = field(default_factory=list)
    holdout_size: int = 0
    method: str = ""
    bound: str = ""
    ci_low: float = math.nan
    ci_high: float = math.nan
    valid_steps: list[int] = field(default_factory=list)
    valid_curve: list[float] = field(default_factory=list)
    stop_step: int = 0
    best_step: int = 0
    wall_time: float = math.nan
    n_samples: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def marginal_permutation(n: int, gen: torch.Generator) -> torch.Tensor:
    """A random permutation of 0..n-1 without fixed points (a single random n-cycle).

    Marginal pairs (u_k, v_perm[k]) must pair each u with *another* sample's v: a fixed point
    k = perm[k] is a joint pair counted as a marginal one. At high MI (small noise, and above
    all sigma = 0) its score dominates log E[e^T], which caps the DV value near log n and, with
    a critic whose joint scores vary, drives the held-out estimate far below zero.
    """
    order = torch.randperm(n, generator=gen, device=gen.device)
    perm = torch.empty_like(order)
    perm[order] = order.roll(-1)
    return perm


def check_finite(value: float, what: str, hint: str) -> float:
    """Raise :class:`EstimationError` naming ``what`` and a fix when ``value`` is NaN."""
    if math.isnan(value):
        raise EstimationError(f"{what} is NaN: the statistics network diverged. {hint}")
    return value


class NeuralEstimator:
    """Shared training and held-out evaluation of a DV statistics network."""

    def __init__(
        self,
        *,
        steps: int = 2000,
        batch_size: int = 256,
        lr: float = 1e-3,
        noise_std: float = 0.0,
        ma_rate: float = 0.01,
        holdout_fraction: float = 0.2,
        eval_shuffles: int = 10,
        hidden: tuple[int, ...] = (256, 256),
        seed: int = 0,
        device: str | torch.device = "auto",
        progress: bool = False,
        log_every: int = 50,
        patience: int | None = None,
        eval_every: int = 100,
        min_steps: int = 200,
        min_delta: float = 0.005,
    ) -> None:
        if patience is not None and (int(patience) < 1 or eval_every < 1 or min_steps < 0):
            raise ValueError(
                f"early stopping needs patience >= 1, eval_every >= 1, min_steps >= 0; got {patience}, "
                f"{eval_every}, {min_steps} (patience=None turns it off)"
            )
        if not isinstance(steps, int) or steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (marginal pairs are shuffles), got {batch_size}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (noise_std >= 0 and math.isfinite(noise_std)):
            raise ValueError(f"noise_std must be a finite number >= 0 (sigma, not sigma^2), got {noise_std}")
        if not 0 < holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction}")
        if eval_shuffles < 1:
            raise ValueError(f"eval_shuffles must be >= 1, got {eval_shuffles}")
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.noise_std = float(noise_std)
        self.ma_rate = ma_rate
        self.holdout_fraction = holdout_fraction
        self.eval_shuffles = eval_shuffles
        self.hidden = tuple(hidden)
        self.seed = seed
        self.device = resolve_device(device)
        self.progress = progress
        self.log_every = max(1, log_every)
        self.critic: nn.Module | None = None
        self.copy_lr_factor = COPY_LR_FACTOR
        self.patience = None if patience is None else int(patience)
        self.eval_every = int(eval_every)
        self.min_steps = int(min_steps)
        self.min_delta = float(min_delta)

    # -- to be provided by subclasses -------------------------------------------------------
    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def make_optimizer(self, critic: nn.Module) -> torch.optim.Optimizer:
        """Adam over the critic's parameter groups (:func:`critic_param_groups`)."""
        return torch.optim.Adam(critic_param_groups(critic, self.lr, self.copy_lr_factor), lr=self.lr)

    def noisy(self, v: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """v + eps, eps ~ N(0, noise_std^2 I), drawn fresh."""
        if self.noise_std == 0:
            return v
        return v + self.noise_std * torch.randn(v.shape, generator=gen, device=v.device, dtype=v.dtype)

    def check_inputs(self, u: torch.Tensor, v: torch.Tensor) -> None:
        if not (isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor)):
            raise TypeError("estimate(u, v) takes two tensors with samples along dimension 0")
        if u.shape[0] != v.shape[0]:
            raise ValueError(
                f"u and v must hold the same number of samples along dim 0, got {u.shape[0]} and {v.shape[0]}"
            )
        n_train = int(u.shape[0] * (1 - self.holdout_fraction))
        if n_train < self.batch_size:
            raise ValueError(
                f"{u.shape[0]} samples leave {n_train} for training, fewer than batch_size={self.batch_size}"
            )
        if u.is_floating_point() and not torch.isfinite(u).all():
            raise ValueError("u holds NaN or infinite values")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError("v holds NaN or infinite values")

    # -- the estimate ---------------------------------------------------------------------
    def estimate(self, u: torch.Tensor, v: torch.Tensor) -> Estimate:
        """Train a statistics network on part of (u, v) and return the held-out DV bound.

        With ``patience`` set (early stopping, off by default), the held-out part is halved:
        the DV bound on the first half is evaluated every ``eval_every`` steps, training stops
        after ``patience`` evaluations without a gain of ``min_delta`` (not before
        ``min_steps``), and the best critic's bound on the second half is returned.
        """
        self.check_inputs(u, v)
        torch.manual_seed(self.seed)
        u = u.to(self.device)
        v = v.to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        order = torch.randperm(u.shape[0], generator=gen, device=self.device)
        n_hold = max(2, int(round(u.shape[0] * self.holdout_fraction)))
        hold, train = order[:n_hold], order[n_hold:]
        if self.patience is not None:
            if n_hold < 8:
                raise ValueError(f"early stopping needs at least 8 held-out samples, got {n_hold}")
            valid, hold = hold[: n_hold // 2], hold[n_hold // 2 :]
            v_steps, v_curve, best, best_step, best_state, bad = [], [], -math.inf, 0, None, 0
        critic = self.make_critic(u, v).to(self.device)
        self.critic = critic
        opt = self.make_optimizer(critic)
        ma = MovingAverageDV(self.ma_rate)
        steps, curve = [], []
        window = torch.zeros((), device=self.device)
        bar = tqdm(range(1, self.steps + 1), disable=not self.progress, desc=type(self).__name__, leave=False)
        for step in bar:
            idx = train[torch.randint(train.numel(), (self.batch_size,), generator=gen, device=self.device)]
            ub, vb = u[idx], self.noisy(v[idx], gen)
            perm = marginal_permutation(self.batch_size, gen)
            t_joint, t_marg = critic.scores(ub, vb, perm)
            loss = -ma.surrogate(t_joint, t_marg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            window = window + dv_bound(t_joint.detach(), t_marg.detach())
            if step % self.log_every == 0 or step == self.steps:
                n = step - (steps[-1] if steps else 0)
                value = float(window) / n
                steps.append(step)
                curve.append(value)
                window = torch.zeros((), device=self.device)
                check_finite(
                    value,
                    f"{type(self).__name__} training bound at step {step}",
                    "Lower lr or batch noise, or raise noise_std.",
                )
                bar.set_postfix(dv=f"{value:.3f}")
            if self.patience is not None and (step % self.eval_every == 0 or step == self.steps):
                v_bound = self.evaluate(u[valid], v[valid], gen)
                v_steps.append(step)
                v_curve.append(v_bound)
                if v_bound > best + self.min_delta:
                    best, best_step, bad = v_bound, step, 0
                    best_state = copy.deepcopy(critic.state_dict())
                else:
                    bad += 1
                if step >= self.min_steps and bad >= self.patience:
                    break
        if self.patience is None:
            value = self.evaluate(u[hold], v[hold], gen)
            return Estimate(
                value=value, curve_steps=steps, curve=curve, holdout_size=n_hold, stop_step=self.steps
            )
        if best_state is not None:
            critic.load_state_dict(best_state)
        value = self.evaluate(u[hold], v[hold], gen)
        return Estimate(
            value=value,
            curve_steps=steps,
            curve=curve,
            holdout_size=int(hold.numel()),
            stop_step=step,
            best_step=best_step,
            valid_steps=v_steps,
            valid_curve=v_curve,
        )

    @torch.no_grad()
    def evaluate(self, u: torch.Tensor, v: torch.Tensor, gen: torch.Generator) -> float:
        """DV bound (Eq. 6) of the trained critic on held-out pairs, marginals from shuffles."""
        assert self.critic is not None
        self.critic.eval()
        v = self.noisy(v, gen)
        joints, margs = [], []
        for k in range(self.eval_shuffles):
            perm = marginal_permutation(u.shape[0], gen)
            t_joint, t_marg = self.critic.scores(u, v, perm)
            if k == 0:
                joints.append(t_joint)
            margs.append(t_marg)
        self.critic.train()
        value = float(dv_bound(torch.cat(joints), torch.cat(margs)))
        return check_finite(
            value, f"{type(self).__name__} held-out estimate", "Lower lr, train longer, or raise noise_std."
        )


class MINE(NeuralEstimator):
    """MINE with an MLP statistics network on the concatenated pair [u, v + eps]."""

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        return ConcatCritic(u[0].numel(), v[0].numel(), self.hidden)


class LabelMINE(NeuralEstimator):
    """MINE for I(L; Y) with integer labels Y: T(l, y) = f(l)_y."""

    def __init__(self, *, num_classes: int = 10, hidden: tuple[int, ...] = (256,), **kwargs) -> None:
        super().__init__(hidden=hidden, **kwargs)
        if self.noise_std:
            raise ValueError("LabelMINE adds no noise to labels: leave noise_std at 0")
        self.num_classes = num_classes

    def check_inputs(self, u: torch.Tensor, v: torch.Tensor) -> None:
        super().check_inputs(u, v)
        if v.dtype not in (torch.int64, torch.int32) or v.dim() != 1:
            raise ValueError(f"LabelMINE needs integer labels of shape [N], got {v.dtype} {tuple(v.shape)}")
        if int(v.min()) < 0 or int(v.max()) >= self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got [{int(v.min())}, {int(v.max())}]"
            )

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        return LabelCritic(u[0].numel(), self.num_classes, self.hidden)


class AAMINE(NeuralEstimator):
    """Architecture-aware MINE (Sec. 3) for I(X; F(X) + eps), F = ``network``.

    ``estimate(x, features)`` takes inputs x and the clean features F(x); the statistics network
    holds a copy of ``network`` initialised from it (Fig. 2), trained at ``copy_lr_factor`` times
    ``lr``; 0 keeps it frozen at F, the optimum when the measured net does not change.
    """

    def __init__(self, network: nn.Module, *, copy_lr_factor: float = COPY_LR_FACTOR, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(network, nn.Module):
            raise TypeError("AAMINE needs the measured layers 1..i as an nn.Module")
        if not (copy_lr_factor >= 0 and math.isfinite(copy_lr_factor)):
            raise ValueError(f"copy_lr_factor must be a finite number >= 0, got {copy_lr_factor}")
        self.network = network
        self.copy_lr_factor = float(copy_lr_factor)

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        critic = ArchitectureAwareCritic(self.network, v[0].numel(), self.hidden)
        if self.copy_lr_factor == 0:  # frozen copy: skip its backward pass
            critic.copy.requires_grad_(False)
        return critic


class TiedInputCritic(TiedMixtureCritic):
    """The tied mixture critic of IB training on (x, z) pairs: h = F(x) with F the measured
    layers themselves (tied, frozen here since the net does not change), T(x_k, z) =
    -a ||h_k - z||^2 - log mean_j exp(-a ||h_j - z||^2) over the batch, one learnt scale a."""

    def __init__(self, network: torch.nn.Module, feature_dim: int) -> None:
        super().__init__(feature_dim)
        self._network = [network]  # not a submodule: no parameters besides the scale

    def scores(
        self, u: torch.Tensor, v: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            h = self._network[0](u).flatten(1)
        return self.scores_from_features(h, v, perm)


class TiedAAMINE(NeuralEstimator):
    """AA-MINE as IB training measures I(X; L_i + eps): the :class:`TiedInputCritic`, trained on
    batches with the moving-average DV gradient, its DV value evaluated on the held-out samples
    (where the mixture runs over all of them, as it runs over the batch in training)."""

    def __init__(self, network: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> torch.nn.Module:
        return TiedInputCritic(self.network, v[0].numel())


class PenaltyAAMINE(NeuralEstimator):
    """AA-MINE with the critic of the paper's training penalty "aamine" (Sec. 3-4, Eq. 6):
    the statistics network and optimizer of :class:`ibcore.core.penalties.AAMinePenalty`, built
    as training builds them when layer i starts (its own copy of ``block`` initialised from it,
    trained at the full learning rate; ``hidden``/``lr`` as training's ``critic_hidden``/``critic_lr``),
    trained here with the layer fixed; its DV bound evaluated on the held-out samples.
    ``estimate(x, features)`` takes the block's inputs x and its clean output."""

    def __init__(self, block: nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(block, nn.Module):
            raise TypeError("PenaltyAAMINE needs the measured block as an nn.Module")
        self.block = block
        self.penalty: AAMinePenalty | None = None

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        self.penalty = AAMinePenalty(self.block.to(self.device), v[0].numel(), self.hidden, self.lr)
        return self.penalty.critic

    def make_optimizer(self, critic: nn.Module) -> torch.optim.Optimizer:
        """The penalty's own optimizer (its learning-rate groups, as in training)."""
        assert self.penalty is not None and critic is self.penalty.critic
        return self.penalty.opt
