"""The statistics networks' activation: ELU, computed where torch's float32 kernel is slow.

On the CPU, torch's float32 ELU goes through a float32 ``expm1`` that is about 10x slower than
its float64 one (torch 2.14.1 on this project's 2-core AMD EPYC machine, 2026-11-29: 339 us
against 61 us forward for a 128 x 256 batch, 375 us against 134 us forward and backward).
:func:`elu` therefore computes a float32 CPU ELU in float64 and rounds it back: within 1 ulp of
``torch.nn.functional.elu`` (most values are equal), with the same gradient formula. Elsewhere
(CUDA, float64) it is ``torch.nn.functional.elu``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_FLOAT64_ON_CPU = [True]


@contextlib.contextmanager
def torch_float32_elu() -> Iterator[None]:
    """Within the block :func:`elu` is torch's own float32 ELU: every activation moves by at most
    1 ulp. The grouped-run benchmark trains its single runs once more this way, to measure how
    far a rounding-level change alone moves a run."""
    _FLOAT64_ON_CPU[0] = False
    try:
        yield
    finally:
        _FLOAT64_ON_CPU[0] = True


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """ELU(x) = x for x > 0, alpha (exp(x) - 1) otherwise; float32 CPU inputs via float64."""
    if _FLOAT64_ON_CPU[0] and x.dtype == torch.float32 and x.device.type == "cpu":
        return F.elu(x.double(), alpha).to(torch.float32)
    return F.elu(x, alpha)


class ELU(nn.ELU):
    """:class:`torch.nn.ELU` computed by :func:`elu` (same parameters and state, so a stored
    state dict loads either way)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            raise ValueError("ibcore's ELU has no in-place form; use inplace=False")
        return elu(x, self.alpha)
