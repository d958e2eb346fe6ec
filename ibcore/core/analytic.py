"""Closed-form mutual information used to check the estimators."""

from __future__ import annotations

import torch


def linear_gaussian_mi(weight: torch.Tensor, input_cov: torch.Tensor, noise_var: float) -> float:
    """I(X; WX + b + eps) in nats for X ~ N(mu, Sigma_X), eps ~ N(0, sigma^2 I) (Eq. 5).

    I = 1/2 log det(W Sigma_X W^T + sigma^2 I) - 1/2 log det(sigma^2 I); infinite at sigma^2 = 0
    whenever W Sigma_X W^T is singular-free, which is why ``noise_var`` must be positive.
    """
    if noise_var <= 0:
        raise ValueError(f"noise_var must be > 0 for a finite MI (Eq. 5), got {noise_var}")
    w = weight.double()
    cov = input_cov.double()
    if cov.shape != (w.shape[1], w.shape[1]):
        raise ValueError(
            f"input_cov has shape {tuple(cov.shape)}, expected {(w.shape[1], w.shape[1])} for W "
            f"of shape {tuple(w.shape)}"
        )
    d = w.shape[0]
    signal = w @ cov @ w.T
    logdet_total = torch.linalg.slogdet(signal + noise_var * torch.eye(d, dtype=w.dtype))[1]
    logdet_noise = d * torch.log(torch.tensor(noise_var, dtype=w.dtype))
    return float(0.5 * (logdet_total - logdet_noise))
