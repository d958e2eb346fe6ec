"""The critics of :func:`ibcore.core.mi.estimate_mi` and the bounds computed from their score
matrix S_ij = T(x_i, y_j): DV / SMILE (Eq. 6), InfoNCE and the Jensen-Shannon training objective."""

from __future__ import annotations

import math

import torch
from torch import nn

from ibcore.core.critics import mlp_head


class SeparableCritic(nn.Module):
    """T(x, y) = g(x) . h(y), g and h ELU MLPs: all B x B scores from 2B network passes."""

    def __init__(self, dx: int, dy: int, hidden: tuple[int, ...], embed_dim: int) -> None:
        super().__init__()
        self.g = mlp_head(dx, hidden, embed_dim)
        self.h = mlp_head(dy, hidden, embed_dim)

    def matrix(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """S[i, j] = T(x_i, y_j)."""
        return self.g(x) @ self.h(y).T


class AllPairsConcatCritic(nn.Module):
    """T(x, y) = MLP([x, y]) (MINE's critic) on all B x B pairs: B^2 network passes."""

    def __init__(self, dx: int, dy: int, hidden: tuple[int, ...], embed_dim: int = 0) -> None:
        super().__init__()
        self.net = mlp_head(dx + dy, hidden)

    def matrix(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], y.shape[0]
        pairs = torch.cat([x[:, None, :].expand(b, c, -1), y[None, :, :].expand(b, c, -1)], dim=2)
        return self.net(pairs).squeeze(2)


CRITICS = {"separable": SeparableCritic, "concat": AllPairsConcatCritic}


# -- bounds from a score matrix --------------------------------------------------------------
def _off_diagonal(s: torch.Tensor) -> torch.Tensor:
    n = s.shape[0]
    return s.flatten()[1:].view(n - 1, n + 1)[:, :-1].flatten()


def js_bound(s: torch.Tensor) -> torch.Tensor:
    """The f-GAN Jensen-Shannon bound of a score matrix: SMILE's training objective (Song & Ermon
    2020, Sec. 5): E_P[-softplus(-T)] - E_Q[softplus(T)], marginal pairs off the diagonal."""
    n = s.shape[0]
    diag = s.diagonal()
    first = -nn.functional.softplus(-diag).mean()
    second = (nn.functional.softplus(s).sum() - nn.functional.softplus(diag).sum()) / (n * (n - 1))
    return first - second


@torch.no_grad()
def block_terms(
    critic: nn.Module, x: torch.Tensor, y: torch.Tensor, blocks: int, method: str, clip: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row block b of the m x m score matrix S_ij = T(x_i, y_j): (joint, log term, rows).

    DV / SMILE (Eq. 6): joint_b = sum of S_ii over the block's rows, log term = logsumexp of the
    block's marginal scores S_ij, i != j (clipped to [-tau, tau] for SMILE). InfoNCE:
    joint_b = sum over rows of S_ii - logsumexp_j S_ij + log m; log term 0. Every sample is
    compared with all m samples, so InfoNCE is capped at log m, not log(batch).
    """
    m = x.shape[0]
    joint, log_part, rows = [], [], []
    for idx in torch.arange(m, device=x.device).tensor_split(blocks):
        if idx.numel() == 0:
            continue
        s = critic.matrix(x[idx], y)
        diag = s[torch.arange(idx.numel(), device=x.device), idx]
        if method == "infonce":
            joint.append((diag - torch.logsumexp(s, dim=1) + math.log(m)).sum())
            log_part.append(s.new_zeros(()))
        else:
            s = s.clone()
            s[torch.arange(idx.numel(), device=x.device), idx] = -math.inf
            if clip is not None:
                s = s.clamp(-clip, clip)
                s[torch.arange(idx.numel(), device=x.device), idx] = -math.inf
            joint.append(diag.sum())
            log_part.append(torch.logsumexp(s.flatten(), dim=0))
        rows.append(idx.numel())
    sizes = torch.tensor(rows, dtype=x.dtype, device=x.device)
    return torch.stack(joint), torch.stack(log_part), sizes


def pooled_bound(
    joint: torch.Tensor, log_part: torch.Tensor, rows: torch.Tensor, m: int, method: str
) -> torch.Tensor:
    """The bound pooled over row blocks (last dimension) of :func:`block_terms`, m columns."""
    mean_joint = joint.sum(-1) / rows.sum(-1)
    if method == "infonce":
        return mean_joint
    n_marg = rows.sum(-1) * (m - 1)
    return mean_joint - (torch.logsumexp(log_part, dim=-1) - torch.log(n_marg))
