"""The paper's AA-MINE penalty (Eq. 2 with its own statistics network: a copy of block i)
for R runs at once, its critic's parameters and Adam state stacked per run (issue 14).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ibcore.core.grouped_stack import (
    StackedModule,
    StackedMovingAverage,
    batched_dv_bound,
    gather_rows,
    stacked_adam,
    stacked_param_groups,
)
from ibcore.core.penalties import AAMinePenalty


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
        self.opt = stacked_adam(stacked_param_groups(named, lr, copy_factor=1.0), lr, capture)
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
