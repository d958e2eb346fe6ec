"""The Donsker-Varadhan bound (Eq. 6) and MINE's bias-corrected gradient surrogate."""

from __future__ import annotations

import math

import torch

MAX_EXPONENT = 30.0  # e^30 ~ 1e13: a marginal score this far above the average is clipped


def log_mean_exp(t: torch.Tensor) -> torch.Tensor:
    """log(mean(exp(t))), computed stably."""
    return torch.logsumexp(t, dim=0) - math.log(t.numel())


def dv_bound(t_joint: torch.Tensor, t_marginal: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan lower bound on I(U;V) in nats (Eq. 6).

    E_P[T] - log E_{P_U x P_V}[e^T], with sample means over joint and marginal scores.
    """
    return t_joint.mean() - log_mean_exp(t_marginal)


class MovingAverageDV:
    """MINE's surrogate whose gradient is the DV gradient with a moving-average denominator.

    The plain DV gradient divides by the batch mean of e^T, a biased estimate of E[e^T];
    Belghazi et al. (Sec. 3.2) replace it by an exponential moving average. The surrogate
    E[T_joint] - E[e^{T_marg}] / ma has exactly that gradient (ma is held constant). The
    average is kept in log space on the device, so no host synchronisation is needed. A
    marginal score more than ``MAX_EXPONENT`` above the running average is clipped there, so
    one outlier cannot overflow the surrogate to inf/NaN.
    """

    def __init__(self, rate: float = 0.01) -> None:
        if not 0 < rate <= 1:
            raise ValueError(f"moving-average rate must lie in (0, 1], got {rate}")
        self.rate = rate
        self.log_ma: torch.Tensor | None = None

    def surrogate(self, t_joint: torch.Tensor, t_marginal: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Return the surrogate to maximise; ``update`` first folds this batch into the average."""
        if update or self.log_ma is None:
            batch_lme = log_mean_exp(t_marginal.detach())
            if self.log_ma is None or self.rate == 1:
                self.log_ma = batch_lme
            else:
                self.log_ma = torch.logaddexp(
                    self.log_ma + math.log1p(-self.rate), batch_lme + math.log(self.rate)
                )
        return t_joint.mean() - torch.exp((t_marginal - self.log_ma).clamp(max=MAX_EXPONENT)).mean()

    def state_dict(self) -> dict:
        return {"rate": self.rate, "log_ma": self.log_ma}

    def load_state_dict(self, state: dict) -> None:
        self.rate = state["rate"]
        self.log_ma = state["log_ma"]
