"""The beta term of Eq. 2 while layer i trains: estimates of I(X; L_i + eps) the layer is
penalised with, selected by ``TrainConfig.penalty``.

- "aamine": the paper's AA-MINE (Sec. 3-4). The statistics network T(x, z) holds its own copy
  of layers 1..i, initialised from the layers when layer i starts and trained by the critic's
  optimizer only (moving-average DV gradient, ``critic_steps`` updates per layer update). The
  layer gets gradient only through z = L_i(x) + eps. Layers 1..i-1 are frozen while layer i
  trains, so the copy starts from their (fixed) output L_{i-1}(x) and holds a copy of block i
  only: the same function at the start as a copy of layers 1..i, at the cost of one block, but
  the critic cannot move its copy of layers 1..i-1.
- "aamine_stopgrad": the same critic family with the copy tied to the layer and a stop-gradient
  on it, h = L_i(x).detach(): the paper's gradient path (through z only) without the lag.
- "tied": :class:`ibcore.core.critics.TiedMixtureCritic` (the default; not a bound, biased up above
  log B), on the fast path of :func:`ibcore.core.training.ib_step`.
- "pairwise_kl": the pairwise-KL upper bound over the batch
  (:func:`ibcore.core.critics.pairwise_kl_upper_bound`).
- "logdet": 1/2 log det(I + Cov_B(L_i)/sigma^2), the form of Eq. 5
  (:func:`ibcore.core.critics.gaussian_logdet`).
- "weight_decay": the sum of squares of layer i's weight tensors (biases excluded; sigma unused).

Every penalty here has ``train_critic`` (a no-op for the closed forms) and ``value``, the term
the layer descends with weight beta, differentiable in the layer's output ``l``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ibcore.core.critics import (
    ArchitectureAwareCritic,
    critic_param_groups,
    gaussian_logdet,
    pairwise_kl_upper_bound,
)
from ibcore.core.dv import MovingAverageDV, dv_bound


class Penalty:
    """An estimate of I(X; L_i + eps) used as the beta term while layer i trains."""

    name = ""
    has_critic = False

    def train_critic(self, h_prev: Tensor, l_fixed: Tensor, noise: Tensor, perm: Tensor) -> None:
        """One update of the penalty's own statistics network with the layer fixed (none here)."""

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        """The penalty on a batch: L_{i-1}(x) = ``h_prev``, L_i(x) = ``l``, eps = ``noise``,
        marginal permutation ``perm``."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class AAMinePenalty(Penalty):
    """The paper's AA-MINE (Eq. 6, Fig. 2) with its own copy of block i (``tied=False``), or the
    copy tied to the layer with a stop-gradient (``tied=True``, "aamine_stopgrad").

    ``value`` is the batch DV bound with the critic fixed; the copy's output is computed without
    autograd from L_{i-1}(x) (or is L_i(x) detached), so the layer's gradient comes through
    z = L_i(x) + eps only, and the critic gets no gradient from the layer's update.
    """

    def __init__(
        self,
        block: nn.Module,
        feature_dim: int,
        hidden: tuple[int, ...],
        lr: float,
        tied: bool = False,
    ) -> None:
        self.name = "aamine_stopgrad" if tied else "aamine"
        self.has_critic = True
        self.tied = tied
        device = next(block.parameters()).device
        network = nn.Identity() if tied else block
        self.critic = ArchitectureAwareCritic(network, feature_dim, hidden).to(device)
        # the copy must keep up with the layer it copies: full learning rate (copy_lr_factor=1)
        groups = critic_param_groups(self.critic, lr, copy_lr_factor=1.0)
        fused = True if device.type in ("cpu", "cuda") else None
        self.opt = torch.optim.Adam(groups, lr=lr, fused=fused)
        self.ma = MovingAverageDV()

    def copy_output(self, h_prev: Tensor, l: Tensor) -> Tensor:  # noqa: E741
        """h(x): the critic's copy of block i applied to L_{i-1}(x), or L_i(x) detached (tied)."""
        if self.tied:
            return l.detach()
        with torch.no_grad():
            return self.critic.copy(h_prev)

    def train_critic(self, h_prev: Tensor, l_fixed: Tensor, noise: Tensor, perm: Tensor) -> None:
        z = l_fixed + noise
        h = l_fixed if self.tied else self.critic.copy(h_prev)  # the copy trains here (and only here)
        surrogate = self.ma.surrogate(*self.critic.scores_from_features(h, z, perm))
        self.opt.zero_grad(set_to_none=True)
        (-surrogate).backward()
        self.opt.step()

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        return dv_bound(*self.critic.scores_from_features(self.copy_output(h_prev, l), l + noise, perm))

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "opt": self.opt.state_dict(), "ma": self.ma.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.critic._scale_ready = False
        self.opt.load_state_dict(state["opt"])
        self.ma.load_state_dict(state["ma"])


class PairwiseKLPenalty(Penalty):
    """The pairwise-KL upper bound on I(X; L_i + eps), X uniform over the batch."""

    name = "pairwise_kl"

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        return pairwise_kl_upper_bound(l, self.sigma)


class LogDetPenalty(Penalty):
    """1/2 log det(I + Cov_B(L_i) / sigma^2), the Gaussian MI of Eq. 5 at the batch covariance."""

    name = "logdet"

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        return gaussian_logdet(l, self.sigma)


class WeightDecayPenalty(Penalty):
    """sum ||W||^2 over layer i's weight tensors (biases excluded): plain L2, gradient 2 beta W."""

    name = "weight_decay"

    def __init__(self, block: nn.Module) -> None:
        self.weights = [p for p in block.parameters() if p.dim() > 1]

    def value(self, h_prev: Tensor, l: Tensor, noise: Tensor, perm: Tensor) -> Tensor:  # noqa: E741
        return sum(w.pow(2).sum() for w in self.weights)


def make_penalty(
    name: str, block: nn.Module, feature_dim: int, sigma: float, hidden: tuple[int, ...], lr: float
) -> Penalty:
    """The penalty ``name`` for layer ``block`` (not "tied", which lives in
    :class:`ibcore.core.training.LayerObjective`). Built when layer i starts; an AA-MINE copy is
    initialised from the block's current weights."""
    if name == "aamine":
        return AAMinePenalty(block, feature_dim, hidden, lr, tied=False)
    if name == "aamine_stopgrad":
        return AAMinePenalty(block, feature_dim, hidden, lr, tied=True)
    if name == "pairwise_kl":
        return PairwiseKLPenalty(sigma)
    if name == "logdet":
        return LogDetPenalty(sigma)
    if name == "weight_decay":
        return WeightDecayPenalty(block)
    raise ValueError(
        f"no penalty object for {name!r}; choose aamine, aamine_stopgrad, pairwise_kl, logdet "
        "or weight_decay ('tied' is built into LayerObjective)"
    )
