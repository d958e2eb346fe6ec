"""Stacked modules and batched math of a group (issue 14): R runs' parameters on a leading
run axis, batched linear layers, the DV bound of Eq. 6, the tied critic of Eq. 2 and the
closed-form penalties per run, and Adam over stacked tensors (each run's own Adam).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ibcore.core.activations import elu
from ibcore.core.critics import LOGSUMEXP_FLOOR, named_param_groups
from ibcore.core.dv import MAX_EXPONENT


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
                x = elu(x, leaf.alpha)
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


def stacked_param_groups(named: dict[str, Tensor], lr: float, copy_factor: float) -> list[dict]:
    """:func:`ibcore.core.critics.critic_param_groups` for stacked parameters."""
    return named_param_groups(named.items(), lr, copy_factor)


def stacked_adam(params: list, lr: float, capture: bool = False) -> torch.optim.Adam:
    """Adam over stacked tensors: each run's Adam (fused where the device has it; ``capture``:
    the step count kept on the device, as a CUDA graph needs)."""
    first = params[0]["params"][0] if isinstance(params[0], dict) else params[0]
    fused = True if first.device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(params, lr=lr, fused=fused, capturable=capture and first.device.type == "cuda")


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
