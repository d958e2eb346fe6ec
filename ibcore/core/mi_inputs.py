"""The inputs of :func:`ibcore.core.mi.estimate_mi`: samples as float tensors [n, d], the
rank-Gaussian (copula) transform and standardisation. MI is invariant under the invertible
per-coordinate maps applied here, so only the estimate changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_samples(a: Any, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``a`` (NumPy array, torch tensor or nested list) as a float tensor [n, d] on the CPU or its device."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(a))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a NumPy array or torch tensor, got {type(a)}") from err
    if t.dim() == 0:
        raise ValueError(f"{name} is a scalar; pass samples along dimension 0")
    t = t.reshape(t.shape[0], -1).to(dtype)
    if t.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(t.shape)})")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} holds NaN or infinite values; drop or impute them first")
    return t


def gaussianize(a: torch.Tensor) -> torch.Tensor:
    """Map each column to a standard normal through its empirical CDF (the Gaussian copula).

    Ties share their average rank r (1..n); u = (r - 1/2) / n; z = Phi^-1(u). The map is
    monotone per coordinate, so I(X; Y) is unchanged (only constant columns lose nothing either).
    """
    n = a.shape[0]
    out = torch.empty_like(a, dtype=torch.float64)
    for j in range(a.shape[1]):
        _, inverse, counts = torch.unique(a[:, j], return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        avg_rank = ends - (counts.double() - 1) / 2
        out[:, j] = torch.special.ndtri((avg_rank[inverse] - 0.5) / n)
    return out.to(a.dtype)


def standardize(a: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per column (constant columns are only centred)."""
    a = a - a.mean(0)
    std = a.std(0)
    return a / torch.where(std > 0, std, torch.ones_like(std))
