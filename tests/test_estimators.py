"""Accuracy and error handling of the MI estimators (DV bound, MINE, AA-MINE) and of Eq. 5.

The accuracy tests train real statistics networks, sized to take about a minute together on
a 2-core CPU (one thread); each asserts a tolerance that a broken estimator would miss.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ibcore import AAMINE, MINE, linear_gaussian_mi
from ibcore.core.dv import dv_bound
from ibcore.core.estimators import (
    EstimationError,
    LabelMINE,
    PenaltyAAMINE,
    check_finite,
    marginal_permutation,
)
from ibcore.core.models import mlp
from ibcore.core.penalties import AAMinePenalty


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: fast for these small nets and immune to CPU oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def correlated_pair(n: int, d: int, rho: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(U, V) with V = rho U + sqrt(1 - rho^2) N, U, N ~ N(0, I_d); true MI -d/2 log(1 - rho^2)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=gen)
    v = rho * u + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=gen)
    return u, v, -0.5 * d * math.log(1 - rho**2)


def linear_layer(d_in: int, d_out: int, n: int, seed: int = 1):
    """The lead's linear-Gaussian case: W = G / sqrt(D), X ~ N(0, I_D); (net, x, W x, W)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_out, d_in, generator=gen) / math.sqrt(d_in)
    x = torch.randn(n, d_in, generator=gen)
    net = mlp([d_in, d_out])
    with torch.no_grad():
        net.blocks[0][-1].weight.copy_(weight)
        net.blocks[0][-1].bias.zero_()
        features = net(x)
    return net, x, features, weight


# -- the DV bound and Eq. 5 ----------------------------------------------------------------


def test_dv_bound_of_the_optimal_critic_is_the_true_mi():
    """T* = log p(u, v) / (p(u) p(v)) makes the DV bound tight: sample means land within 3 %."""
    rho, n = 0.8, 200_000
    u, v, true_mi = correlated_pair(n, 1, rho, seed=0)

    def t_star(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = a.squeeze(1).double(), b.squeeze(1).double()
        q = (a**2 - 2 * rho * a * b + b**2) / (1 - rho**2)
        return -0.5 * math.log(1 - rho**2) - 0.5 * q + 0.5 * (a**2 + b**2)

    perm = marginal_permutation(n, torch.Generator().manual_seed(1))
    value = float(dv_bound(t_star(u, v), t_star(u, v[perm])))
    assert value == pytest.approx(true_mi, rel=0.03)


def test_linear_gaussian_mi_matches_a_hand_computation_in_1d():
    w, var_x, noise = 1.5, 2.0, 0.25
    expected = 0.5 * math.log(1 + w**2 * var_x / noise)  # = 0.5 log(19)
    got = linear_gaussian_mi(torch.tensor([[w]]), torch.tensor([[var_x]]), noise)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(0.5 * math.log(19.0), rel=1e-12)


def test_linear_gaussian_mi_rejects_bad_noise_and_shapes():
    with pytest.raises(ValueError, match="noise_var must be > 0"):
        linear_gaussian_mi(torch.eye(2), torch.eye(2), 0.0)
    with pytest.raises(ValueError, match="input_cov has shape"):
        linear_gaussian_mi(torch.ones(2, 3), torch.eye(2), 0.1)


def test_marginal_permutation_has_no_fixed_points():
    gen = torch.Generator().manual_seed(0)
    for n in (2, 3, 17, 256):
        for _ in range(20):
            perm = marginal_permutation(n, gen)
            assert sorted(perm.tolist()) == list(range(n))
            assert not bool((perm == torch.arange(n)).any())


# -- accuracy ------------------------------------------------------------------------------


def test_mine_on_a_correlated_gaussian_pair_is_within_10_percent():
    u, v, true_mi = correlated_pair(20_000, 2, 0.8, seed=2)  # true MI 1.022 nats
    est = MINE(steps=1000, batch_size=256, device="cpu", seed=0).estimate(u, v)
    assert est.value == pytest.approx(true_mi, rel=0.10)
    assert est.holdout_size == 4000
    assert len(est.curve) == len(est.curve_steps) > 0


@pytest.mark.parametrize("sigma2", [0.03, 0.3])
def test_aamine_on_a_linear_gaussian_layer_is_within_10_percent_of_eq5(sigma2):
    net, x, features, weight = linear_layer(8, 2, n=10_000)
    true_mi = linear_gaussian_mi(weight, torch.eye(8), sigma2)
    assert 1.0 < true_mi < 4.0  # 3.35 and 1.34 nats
    est = AAMINE(net.prefix(1), steps=600, batch_size=256, noise_std=math.sqrt(sigma2), device="cpu", seed=0)
    assert est.estimate(x, features).value == pytest.approx(true_mi, rel=0.10)


def test_aamine_far_exceeds_mine_at_zero_noise_on_a_random_mlp():
    """At sigma = 0 the true MI is infinite: AA-MINE's estimate explodes, MINE's stays small."""
    torch.manual_seed(3)
    net = mlp([16, 64, 32]).requires_grad_(False)
    x = torch.randn(4000, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features = net(x)
    aa = AAMINE(net.prefix(2), steps=300, batch_size=128, device="cpu", seed=0).estimate(x, features).value
    mine = MINE(steps=300, batch_size=128, device="cpu", seed=0).estimate(x, features).value
    assert mine > 0
    assert aa > 2 * mine
    assert aa > 100  # nats; a finite sample at sigma = 0 gives an enormous DV value


def test_same_seed_same_estimate_on_cpu():
    u, v, _ = correlated_pair(2000, 2, 0.5, seed=4)

    def run(seed: int) -> float:
        return MINE(steps=40, batch_size=64, device="cpu", seed=seed, noise_std=0.1).estimate(u, v).value

    net, x, features, _ = linear_layer(8, 2, n=2000)

    def run_aa(seed: int) -> float:
        est = AAMINE(net.prefix(1), steps=40, batch_size=64, noise_std=0.3, device="cpu", seed=seed)
        return est.estimate(x, features).value

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert run_aa(7) == run_aa(7)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_std": -0.1}, "noise_std must be a finite number >= 0"),
        ({"noise_std": float("nan")}, "noise_std must be a finite number >= 0"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": 2.5}, "steps must be a positive integer"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"holdout_fraction": 1.0}, "holdout_fraction must lie in"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": "not a device"}, "is not a device name"),
    ],
)
def test_bad_estimator_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MINE(**kwargs)
    with pytest.raises(ValueError, match=match):
        AAMINE(nn.Linear(2, 2), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_raises():
    with pytest.raises(ValueError, match="no CUDA GPU is present"):
        MINE(device="cuda")


def test_aamine_rejects_bad_network_and_copy_factor():
    with pytest.raises(TypeError, match="nn.Module"):
        AAMINE(lambda x: x)
    with pytest.raises(ValueError, match="copy_lr_factor"):
        AAMINE(nn.Linear(2, 2), copy_lr_factor=-1.0)


def test_bad_inputs_raise():
    est = MINE(steps=5, batch_size=16, device="cpu")
    u = torch.randn(100, 3)
    with pytest.raises(ValueError, match="same number of samples"):
        est.estimate(u, torch.randn(99, 3))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        est.estimate(u[:10], u[:10])
    bad = u.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="u holds NaN"):
        est.estimate(bad, u)
    with pytest.raises(ValueError, match="v holds NaN"):
        est.estimate(u, bad)
    with pytest.raises(TypeError, match="two tensors"):
        est.estimate(u.numpy(), u)
    with pytest.raises(ValueError, match="integer labels"):
        LabelMINE(steps=5, batch_size=16, device="cpu").estimate(u, torch.randn(100))
    with pytest.raises(ValueError, match="LabelMINE adds no noise"):
        LabelMINE(noise_std=0.1)


class NaNCritic(nn.Module):
    """A statistics network whose scores are NaN: stands in for a diverged one."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def scores(self, u, v, perm):
        t = self.w * torch.full((u.shape[0],), float("nan"))
        return t, t


class DivergingMINE(MINE):
    def make_critic(self, u, v):
        return NaNCritic()


def test_nan_estimate_raises_estimation_error():
    u = torch.randn(200, 2)
    with pytest.raises(EstimationError, match="is NaN: the statistics network diverged"):
        DivergingMINE(steps=3, batch_size=16, device="cpu", log_every=1).estimate(u, u)
    with pytest.raises(EstimationError, match="held-out estimate is NaN"):
        check_finite(float("nan"), "MINE held-out estimate", "Lower lr.")
    assert check_finite(1.5, "x", "") == 1.5


# -- the forms of AA-MINE that IB training uses --------------------------------------------


def test_penalty_aamine_trains_the_penalty_critic_with_its_own_optimizer():
    """PenaltyAAMINE is the critic and optimizer of AAMinePenalty (the paper's "aamine" penalty),
    not a look-alike: its copy of the layer trains (the layer itself stays as it was)."""
    net, x, features, _ = linear_layer(8, 2, n=2000)
    block = net.prefix(1)
    before = [p.detach().clone() for p in block.parameters()]
    est = PenaltyAAMINE(block, steps=30, batch_size=64, noise_std=0.3, hidden=(32,), device="cpu", seed=0)
    est.estimate(x, features)
    assert isinstance(est.penalty, AAMinePenalty) and est.critic is est.penalty.critic
    reference = AAMinePenalty(block, 2, (32,), 1e-3)
    assert [g["lr"] for g in est.penalty.opt.param_groups] == [g["lr"] for g in reference.opt.param_groups]
    assert est.penalty.opt.state  # the penalty's own optimizer took the steps
    moved = [not torch.equal(p, q) for p, q in zip(est.critic.copy.parameters(), before, strict=True)]
    assert any(moved)  # the critic's copy trains (at the full learning rate)
    assert all(torch.equal(p, q) for p, q in zip(block.parameters(), before, strict=True))


@pytest.mark.parametrize("sigma2", [0.03, 0.3])
def test_penalty_aamine_on_a_linear_gaussian_layer_is_within_10_percent_of_eq5(sigma2):
    net, x, features, weight = linear_layer(8, 2, n=10_000)
    true_mi = linear_gaussian_mi(weight, torch.eye(8), sigma2)
    est = PenaltyAAMINE(
        net.prefix(1),
        steps=600,
        batch_size=256,
        noise_std=math.sqrt(sigma2),
        hidden=(256,),
        device="cpu",
        seed=0,
    )
    assert est.estimate(x, features).value == pytest.approx(true_mi, rel=0.10)


def test_early_stopping_stops_before_the_budget_on_an_easy_task():
    net, x, features, weight = linear_layer(8, 2, n=10_000)
    true_mi = linear_gaussian_mi(weight, torch.eye(8), 0.3)
    kwargs = dict(steps=3000, batch_size=256, noise_std=math.sqrt(0.3), device="cpu", seed=0)
    est = AAMINE(net.prefix(1), patience=2, eval_every=50, min_steps=100, **kwargs).estimate(x, features)
    assert est.stop_step < 3000 and 0 < est.best_step <= est.stop_step
    assert est.holdout_size == 1000  # half of the 2000 held out; the other half validates
    assert len(est.valid_steps) == len(est.valid_curve) == est.stop_step // 50
    assert est.value == pytest.approx(true_mi, rel=0.10)
