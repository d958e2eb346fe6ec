"""Statistics networks T(u, v) of the Donsker-Varadhan bound (Eq. 6).

Each critic has ``scores(u, v, perm)`` returning T on the joint pairs (u_k, v_k) and on the
marginal pairs (u_k, v_perm[k]); a marginal pair is a joint pair with its second member
shuffled within the batch. Work shared by both sets of pairs is computed once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn

from ibcore.core.activations import ELU


def mlp_head(in_features: int, hidden: tuple[int, ...], out_features: int = 1) -> nn.Sequential:
    """A fully connected ELU network ``in_features -> hidden... -> out_features``
    (:class:`ibcore.core.activations.ELU`)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), ELU()]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class ConcatCritic(nn.Module):
    """MINE's statistics network: an MLP on the concatenated pair [u, v] (Belghazi et al.)."""

    def __init__(self, dim_u: int, dim_v: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.net = mlp_head(dim_u + dim_v, hidden)

    def scores(
        self, u: torch.Tensor, v: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = u.flatten(1)
        v = v.flatten(1)
        joint = self.net(torch.cat([u, v], dim=1)).squeeze(1)
        marginal = self.net(torch.cat([u, v[perm]], dim=1)).squeeze(1)
        return joint, marginal


class LabelCritic(nn.Module):
    """MINE for a discrete second argument: T(l, y) = f(l)_y with f an MLP to K outputs.

    f(l) is computed once and read at y (joint) and at the shuffled y (marginal).
    """

    def __init__(self, dim_u: int, num_classes: int, hidden: tuple[int, ...] = (256,)) -> None:
        super().__init__()
        self.net = mlp_head(dim_u, hidden, num_classes)

    def scores(
        self, u: torch.Tensor, y: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        table = self.net(u.flatten(1))
        joint = table.gather(1, y[:, None]).squeeze(1)
        marginal = table.gather(1, y[perm][:, None]).squeeze(1)
        return joint, marginal


class ArchitectureAwareCritic(nn.Module):
    """AA-MINE's statistics network (Sec. 3, Fig. 2).

    T(x, z) = -exp(s) * ||h(x) - z||^2 / d + g(z), where h is a trainable copy of layers 1..i of
    the measured net (initialised from them), d the feature dimension, s a learnt log-scale and
    g(z) = exp(t) ||z - m||^2 / d + ||A (z - m)||^2 + MLP(z) a model of -log p(z): an isotropic
    Gaussian term (m, t learnt, initialised from the first batch's mean and variance), a
    low-rank correction (A is r x d, r = min(d, 64), initialised at 0) and an MLP. This family
    contains the optimal critic log p(z|x) - log p(z) + c of Gaussian noise whenever h equals
    the measured layers and g matches -log p(z). h(x) and g(z) are each
    computed once per batch and reused by the marginal pairs.
    """

    def __init__(self, network: nn.Module, feature_dim: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.copy = copy.deepcopy(network)
        for p in self.copy.parameters():
            p.requires_grad_(True)
        self.copy.train()
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.log_spread = nn.Parameter(torch.zeros(()))
        self.center = nn.Parameter(torch.zeros(feature_dim))
        self.register_buffer("scale_initialised", torch.zeros((), dtype=torch.bool))
        self.marginal_term = mlp_head(feature_dim, hidden)
        self.quadratic = nn.Linear(feature_dim, min(feature_dim, 64), bias=False)
        nn.init.zeros_(self.quadratic.weight)
        self.feature_dim = feature_dim
        self._scale_ready = False

    @torch.no_grad()
    def _initialise_scale(self, h: torch.Tensor, z: torch.Tensor) -> None:
        """Set exp(s)/d to 1/(2 v), v the per-coordinate squared joint distance of a batch.

        This matches the Gaussian-noise optimum for the first batch; at sigma = 0 (v = 0) v is
        floored at 1e-6 of the marginal distance, and training takes the scale further.
        """
        joint = (h - z).pow(2).mean()
        marginal = (h - z.roll(1, 0)).pow(2).mean()
        v = torch.maximum(joint, 1e-6 * marginal + 1e-12)
        self.log_scale.copy_(torch.log(self.feature_dim / (2 * v)))
        self.center.copy_(z.mean(0))
        spread = (z - z.mean(0)).pow(2).mean() + 1e-12
        self.log_spread.copy_(torch.log(self.feature_dim / (2 * spread)))
        self.scale_initialised.fill_(True)

    def scores(
        self, x: torch.Tensor, z: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scores_from_features(self.copy(x), z, perm)

    def scores_from_features(
        self, h: torch.Tensor, z: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores when h = copy(x) is already computed."""
        h = h.flatten(1)
        z = z.flatten(1)
        if not self._scale_ready:  # one host sync, on the first batch only
            if not bool(self.scale_initialised):
                self._initialise_scale(h, z)
            self._scale_ready = True
        scale = self.log_scale.exp() / self.feature_dim
        zc = z - self.center
        g = (
            self.log_spread.exp() / self.feature_dim * zc.pow(2).sum(1)
            + self.quadratic(zc).pow(2).sum(1)
            + self.marginal_term(z).squeeze(1)
        )
        joint = -scale * (h - z).pow(2).sum(1) + g
        z_m = z[perm]
        marginal = -scale * (h - z_m).pow(2).sum(1) + g[perm]
        return joint, marginal


COPY_LR_FACTOR = 0.1
SCALE_LR_FACTOR = 10.0


def critic_param_groups(critic: nn.Module, lr: float, copy_lr_factor: float = COPY_LR_FACTOR) -> list[dict]:
    """Optimizer parameter groups for a statistics network.

    In AA-MINE the log-scale learns ``SCALE_LR_FACTOR`` times faster (it must track the
    layer's scale) and the copy of layers 1..i ``COPY_LR_FACTOR`` times slower: it starts at
    the optimum h = F_i, where Adam's normalised steps would otherwise only add jitter. While the
    measured layer itself trains (IB training) the copy must keep up: pass ``copy_lr_factor=1``.
    """
    return named_param_groups(critic.named_parameters(), lr, copy_lr_factor)


def named_param_groups(
    named: Iterable[tuple[str, torch.Tensor]], lr: float, copy_lr_factor: float = COPY_LR_FACTOR
) -> list[dict]:
    """:func:`critic_param_groups` of (name, parameter) pairs (also stacked parameters)."""
    groups: dict[float, list[torch.Tensor]] = {}
    for name, p in named:
        factor = (
            SCALE_LR_FACTOR
            if name in ("log_scale", "log_spread")
            else copy_lr_factor
            if name.startswith("copy.")
            else 1.0
        )
        groups.setdefault(factor, []).append(p)
    return [{"params": ps, "lr": lr * f} for f, ps in groups.items()]


#: Terms of a log-sum-exp more than this many nats below the largest one are dropped: e^-50 is
#: ~2e-22 of the largest term, far below float32 resolution, so the value does not change. On
#: the CPU this keeps exp() off its slow underflow path and the gradients free of subnormal
#: numbers (each of which costs a slow microcode assist in the matrix products that follow).
LOGSUMEXP_FLOOR = 50.0


def squared_distances(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """[k, j] = ||z_k - h_j||^2 for rows z_k of z [B, d] and h_j of h [B', d], by one matrix
    product (the expansion torch.cdist also uses), floored at 0."""
    norms = z.pow(2).sum(1, keepdim=True) + h.pow(2).sum(1)
    return torch.addmm(norms, z, h.T, alpha=-2).clamp_min(0)


def floored_logsumexp(logits: torch.Tensor, floor: float = LOGSUMEXP_FLOOR) -> torch.Tensor:
    """logsumexp over dim 1, each row's terms floored at ``floor`` nats below the row's maximum.

    The same value as ``torch.logsumexp(logits, 1)`` to float precision (see
    :data:`LOGSUMEXP_FLOOR`); the floored terms get an exact zero gradient.
    """
    top = logits.detach().amax(1, keepdim=True)
    return top.squeeze(1) + torch.exp((logits - top).clamp_min(-floor)).sum(1).log()


class TiedMixtureCritic(nn.Module):
    """The "tied" penalty: a mixture critic whose copy of layers 1..i is the layers themselves.

    T(x_k, z) = -a ||h_k - z||^2 - log mean_j exp(-a ||h_j - z||^2), with h = L_i (tied: the
    copy never lags behind, and the layer gets gradient through h as well as through z) and
    a = exp(s)/d learnt; -log p(z) is modelled by the batch mixture of the noise kernels
    instead of a learnt net.

    What it is not: it is neither the paper's AA-MINE (whose copy belongs to the critic, so the
    layer gets gradient only through z = L_i + eps; :class:`ArchitectureAwareCritic`, penalty
    "aamine") nor a bound on I(X;L_i+eps). Only the joint term of its DV value is bounded (by
    log B); the marginal term is not, so once the MI exceeds log B shuffled pairs score far
    below joint ones and the value climbs far above the truth (linear-Gaussian data with known
    MI 67 nats reads ~340; tests/test_penalties.py shows the bias against Eq. 5). As a penalty
    its gradient mostly pulls the nearest shuffled pair together. It stays the default
    ("tied") so that stored records keep their meaning, and it is the I(X;L_i+eps) curve
    recorded for every penalty (``I_x``); the exact pairwise bounds of
    :func:`ibcore.core.bounds.mixture_mi_bounds` are recorded beside it.

    The scores depend on (h, z) only through the squared distances ||z_k - h_j||^2, which do not
    depend on the critic's parameter: a caller that scores one batch twice (before and after a
    critic update) computes them once (:func:`squared_distances`,
    :meth:`scores_from_distances`).
    """

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("scale_initialised", torch.zeros((), dtype=torch.bool))
        self._scale_ready = False

    def ensure_scale(self, h: torch.Tensor, z: torch.Tensor) -> None:
        """On the first batch only (one host sync): set a = exp(s)/d to 1/(2 v), v the mean
        squared joint distance per coordinate (the Gaussian-noise optimum), unless restored."""
        if self._scale_ready:
            return
        if not bool(self.scale_initialised):
            with torch.no_grad():
                h = h.flatten(1)
                z = z.flatten(1)
                v = torch.maximum((h - z).pow(2).mean(), 1e-6 * (h - z.roll(1, 0)).pow(2).mean() + 1e-12)
                self.log_scale.copy_(torch.log(self.feature_dim / (2 * v)))
                self.scale_initialised.fill_(True)
        self._scale_ready = True

    def scores_from_distances(
        self, d2: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores from d2[k, j] = ||z_k - h_j||^2 (:func:`squared_distances` of z and h); the
        scale must be set (:meth:`ensure_scale`)."""
        a = self.log_scale.exp() / self.feature_dim
        logits = -a * d2  # logits[k, j] = -a ||z_k - h_j||^2
        log_mixture = floored_logsumexp(logits) - math.log(d2.shape[1])
        joint = logits.diagonal() - log_mixture
        marginal = logits.gather(0, perm[None, :]).squeeze(0) - log_mixture[perm]  # [perm[k], k]
        return joint, marginal

    def scores_from_features(
        self, h: torch.Tensor, z: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = h.flatten(1)
        z = z.flatten(1)
        self.ensure_scale(h, z)
        return self.scores_from_distances(squared_distances(z, h), perm)


def _pairwise_mixture_bound(h: torch.Tensor, sigma: float, divisor: float) -> torch.Tensor:
    """-(1/B) sum_i log (1/B) sum_j exp(-||h_i - h_j||^2 / (divisor sigma^2)), h of shape [B, d]."""
    h = h.flatten(1)
    b = h.shape[0]
    d2 = squared_distances(h, h)
    d2 = d2 * (1 - torch.eye(b, dtype=d2.dtype, device=d2.device))  # exact zeros on the diagonal
    return -(torch.logsumexp(-d2 / (divisor * sigma**2), dim=1) - math.log(b)).mean()


def pairwise_kl_upper_bound(h: torch.Tensor, sigma: float) -> torch.Tensor:
    """Upper bound on I(X; h(X) + eps), eps ~ N(0, sigma^2 I), X uniform over the B rows of h.

    The pairwise-KL bound of Kolchinsky & Tracey (as in nonlinear IB): the KL divergence of
    N(h_i, sigma^2 I) from N(h_j, sigma^2 I) is ||h_i - h_j||^2 / (2 sigma^2), so
    I <= -(1/B) sum_i log (1/B) sum_j exp(-||h_i - h_j||^2 / (2 sigma^2)) <= log B.
    Differentiable in h.
    """
    return _pairwise_mixture_bound(h, sigma, 2.0)


def gaussian_logdet(h: torch.Tensor, sigma: float) -> torch.Tensor:
    """1/2 log det(I + Cov(h) / sigma^2), Cov the sample covariance (divisor B - 1) of the B rows.

    The form of Eq. 5: I(X; L + eps) of a Gaussian L with that covariance. When the dimension d
    exceeds B the B x B Gram form det(I_B + H H^T / ((B-1) sigma^2)) (H the centred rows, the
    same determinant) is used. Differentiable in h.
    """
    h = h.flatten(1)
    b, d = h.shape
    hc = h - h.mean(0)
    gram = hc @ hc.T if d > b else hc.T @ hc
    m = torch.eye(gram.shape[0], dtype=h.dtype, device=h.device) + gram / ((b - 1) * sigma**2)
    chol, info = torch.linalg.cholesky_ex(m)  # no exception (and no host sync) on a non-finite h
    value = torch.log(chol.diagonal()).sum()
    return torch.where(info == 0, value, torch.full_like(value, math.nan))
