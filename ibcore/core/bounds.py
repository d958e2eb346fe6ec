"""Exact reference values of I(X; L + eps) when X is uniform over N samples.

With X uniform over N points whose features are h_1..h_N and eps ~ N(0, sigma^2 I), L + eps is
a mixture of N Gaussians and I(X; L + eps) = H(L + eps) - H(eps). Kolchinsky & Tracey (2017,
"Estimating mixture entropy with pairwise distances", Eqs. 8-10) bound the mixture entropy by
pairwise distances between components; for equal-weight, equal-covariance components:

- upper bound (pairwise KL):        I_KL = -1/N sum_i log(1/N sum_j exp(-||h_i-h_j||^2 / (2 sigma^2)))
- lower bound (Bhattacharyya):      I_BD = -1/N sum_i log(1/N sum_j exp(-||h_i-h_j||^2 / (8 sigma^2)))

Both lie in [0, log N]; both tend to log N as sigma -> 0 for distinct points and to 0 as
sigma -> inf. They are computed in float64 in row chunks, so N = 60 000 x d = 512 fits in memory.

Also here: :func:`mi_status`, the four states of a neural estimate (issue 10), and
:func:`label_mi_range` for I(Y; L) with K classes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

CERTIFIED = "certified"
ABOVE_LOG_N = "above log N"
ABOVE_UPPER = "above upper bound"
BELOW_LOWER = "below lower bound"
#: From best to worst: a row over seeds takes its worst seed's status.
STATUSES = (CERTIFIED, ABOVE_LOG_N, ABOVE_UPPER, BELOW_LOWER)


def _as_features(h: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(h)
    if t.dim() < 2:
        t = t.reshape(t.shape[0] if t.dim() else 1, -1)
    t = t.flatten(1)
    if not t.is_floating_point():
        t = t.double()
    if t.shape[0] < 1:
        raise ValueError("pairwise bounds need at least one sample")
    if not torch.isfinite(t).all():
        raise ValueError("features hold NaN or infinite values; pass finite layer outputs")
    return t


def _pairwise_terms(h: torch.Tensor, denominators: tuple[float, ...], chunk: int) -> list[float]:
    """-1/N sum_i log(1/N sum_j exp(-||h_i - h_j||^2 / c)) in float64, for each c in ``denominators``.

    One pass over the distance matrix, ``chunk`` rows at a time, serves every denominator.
    """
    n = h.shape[0]
    h64 = h.double()
    norms = h64.pow(2).sum(1)
    totals = [0.0] * len(denominators)
    for start in range(0, n, chunk):
        rows = h64[start : start + chunk]
        d2 = torch.addmm(norms[start : start + chunk, None] + norms[None, :], rows, h64.T, alpha=-2)
        d2.clamp_(min=0)
        # the diagonal is exactly 0 in exact arithmetic; rounding must not make it positive
        idx = torch.arange(rows.shape[0], device=h.device)
        d2[idx, start + idx] = 0.0
        for k, c in enumerate(denominators):
            totals[k] += float(torch.logsumexp(d2 / -c, dim=1).sum())
    return [math.log(n) - t / n for t in totals]


def _check_sigma2(sigma2: float) -> float:
    sigma2 = float(sigma2)
    if not (sigma2 > 0 and math.isfinite(sigma2)):
        raise ValueError(f"sigma2 must be a finite number > 0 (the noise variance), got {sigma2}")
    return sigma2


def kl_upper_bound(h: torch.Tensor | np.ndarray, sigma2: float, chunk: int = 2048) -> float:
    """Pairwise-KL upper bound on I(X; L + eps) in nats (Kolchinsky & Tracey 2017, Eq. 10).

    ``h`` holds the N feature vectors L(x_i) (rows); ``sigma2`` the noise variance.
    """
    return _pairwise_terms(_as_features(h), (2.0 * _check_sigma2(sigma2),), chunk)[0]


def bhattacharyya_lower_bound(h: torch.Tensor | np.ndarray, sigma2: float, chunk: int = 2048) -> float:
    """Bhattacharyya lower bound on I(X; L + eps) in nats (Kolchinsky & Tracey 2017, Eq. 9)."""
    return _pairwise_terms(_as_features(h), (8.0 * _check_sigma2(sigma2),), chunk)[0]


def mixture_mi_bounds(h: torch.Tensor | np.ndarray, sigma2: float, chunk: int = 2048) -> tuple[float, float]:
    """(lower, upper) = (I_BD, I_KL) bounds on I(X; L + eps), X uniform over the rows of ``h``.

    One pass over the pairwise distances; N = 60 000, d = 512 takes minutes on one CPU core.
    """
    sigma2 = _check_sigma2(sigma2)
    lo, hi = _pairwise_terms(_as_features(h), (8.0 * sigma2, 2.0 * sigma2), chunk)
    return lo, hi


def monte_carlo_mixture_mi(
    h: torch.Tensor | np.ndarray, sigma2: float, n_draws: int = 20000, seed: int = 0
) -> float:
    """Monte Carlo value of I(X; L + eps) for X uniform over the rows of ``h`` (a check, O(draws N)).

    I = E[log p(z | x) - log p(z)], z = h_i + eps, p(z) = 1/N sum_j N(z; h_j, sigma^2 I).
    """
    h = _as_features(h).double()
    sigma2 = _check_sigma2(sigma2)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(h.shape[0], (n_draws,), generator=gen)
    eps = torch.randn(n_draws, h.shape[1], generator=gen, dtype=torch.float64) * math.sqrt(sigma2)
    z = h[idx] + eps
    log_cond = -eps.pow(2).sum(1) / (2 * sigma2)
    d2 = torch.cdist(z, h).pow(2)
    log_marg = torch.logsumexp(-d2 / (2 * sigma2), dim=1) - math.log(h.shape[0])
    return float((log_cond - log_marg).mean())


def mi_status(value: float, n: int, upper: float | None = None, lower: float | None = 0.0) -> str:
    """Status of a sample-based MI estimate (issue 10).

    - "below lower bound" when the value lies below a known lower bound ``lower``: 0 by default
      (I >= 0 for every distribution), or a larger one where known (the Bhattacharyya bound
      :func:`bhattacharyya_lower_bound`, a Fano bound); the value is invalid (AA-MINE's -9.1
      nats on an MNIST layer, I(Y; L) = -46.9 in the information plane). ``lower=None`` means 0;
    - "above upper bound" when a known upper bound ``upper`` (e.g. :func:`kl_upper_bound`, the
      Gaussian bound or log K for a K-class label) is exceeded: the value is invalid;
    - "above log N" when it exceeds log ``n`` (n = samples the estimate was computed from): no
      sample-based lower bound can certify more than log n nats;
    - "certified" otherwise.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive sample count, got {n!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError("value is NaN; a diverged estimate has no status, rerun the estimator")
    floor = 0.0 if lower is None or math.isnan(float(lower)) else max(0.0, float(lower))
    if value < floor:
        return BELOW_LOWER
    if upper is not None and value > float(upper):
        return ABOVE_UPPER
    if value > math.log(n):
        return ABOVE_LOG_N
    return CERTIFIED


def label_mi_range(num_classes: int) -> tuple[float, float]:
    """The range [0, log K] of I(Y; L) for a label with K classes, in nats (I(Y;L) <= H(Y) <= log K)."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return 0.0, math.log(num_classes)


def label_mi_in_range(value: float, num_classes: int, tol: float = 0.0) -> bool:
    """True when an I(Y; L) estimate lies in [0 - tol, log K + tol]; values outside are to be flagged."""
    lo, hi = label_mi_range(num_classes)
    return lo - tol <= float(value) <= hi + tol
