"""The statistics networks' ELU (ibcore.core.activations): torch's ELU to 1 ulp, same gradient."""

import pytest
import torch
from torch.nn import functional as F

from ibcore.core.activations import ELU, elu, torch_float32_elu
from ibcore.core.critics import mlp_head


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_within_one_ulp_of_torch(alpha: float) -> None:
    x = torch.randn(256, 300, generator=torch.Generator().manual_seed(0)) * 3
    ours, theirs = elu(x, alpha), F.elu(x, alpha)
    assert ours.dtype == torch.float32
    spacing = torch.nextafter(theirs.abs(), torch.tensor(float("inf"))) - theirs.abs()
    assert bool(((ours - theirs).abs() <= spacing).all())


def test_elu_gradient_matches_torch() -> None:
    x = torch.randn(64, 50, generator=torch.Generator().manual_seed(1), requires_grad=True)
    (g_ours,) = torch.autograd.grad(elu(x).pow(2).sum(), x)
    (g_torch,) = torch.autograd.grad(F.elu(x).pow(2).sum(), x)
    torch.testing.assert_close(g_ours, g_torch, rtol=1e-6, atol=1e-6)


def test_float64_input_is_torch_elu_exactly() -> None:
    x = torch.randn(32, 8, dtype=torch.float64)
    assert torch.equal(elu(x), F.elu(x))


def test_critic_heads_use_it_and_inplace_is_refused() -> None:
    head = mlp_head(4, (8,))
    assert any(isinstance(m, ELU) for m in head.modules())
    with pytest.raises(ValueError, match="in-place"):
        ELU(inplace=True)(torch.zeros(2))


def test_torch_float32_elu_switches_for_the_block_only() -> None:
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(2))
    with torch_float32_elu():
        assert torch.equal(elu(x), F.elu(x))
    assert not torch.equal(elu(x), F.elu(x))  # some of 32768 values differ by 1 ulp
