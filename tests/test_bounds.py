"""Pairwise-distance bounds on I(X; L + eps) for X uniform over N samples (ibcore.core.bounds)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from ibcore.core.bounds import (
    ABOVE_LOG_N,
    ABOVE_UPPER,
    BELOW_LOWER,
    CERTIFIED,
    STATUSES,
    bhattacharyya_lower_bound,
    kl_upper_bound,
    label_mi_in_range,
    label_mi_range,
    mi_status,
    mixture_mi_bounds,
    monte_carlo_mixture_mi,
)


@pytest.fixture(scope="module")
def points() -> torch.Tensor:
    return torch.randn(40, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("sigma2", [0.1, 0.5, 2.0])
def test_bounds_bracket_monte_carlo(points, sigma2):
    lo, hi = mixture_mi_bounds(points, sigma2)
    mc = monte_carlo_mixture_mi(points, sigma2, n_draws=40000, seed=1)
    assert lo < hi
    # Monte Carlo standard error here is ~0.01 nats
    assert lo - 0.03 <= mc <= hi + 0.03, (lo, mc, hi)


def test_limits(points):
    n = points.shape[0]
    for f in (kl_upper_bound, bhattacharyya_lower_bound):
        assert f(points, 1e-6) == pytest.approx(math.log(n), abs=1e-6)
        assert f(points, 1e6) == pytest.approx(0.0, abs=1e-4)


def test_chunking_and_numpy_input(points):
    a = kl_upper_bound(points, 0.3, chunk=7)
    b = kl_upper_bound(points.numpy().astype(np.float32), 0.3, chunk=4096)
    assert a == pytest.approx(b, rel=1e-5)


def test_duplicates_lower_the_ceiling():
    h = torch.zeros(10, 2)
    h[5:] = 1.0  # two distinct points, five copies each: at sigma -> 0, I -> log 2
    assert kl_upper_bound(h, 1e-8) == pytest.approx(math.log(2), abs=1e-9)


def test_large_n_is_fast():
    h = torch.randn(6000, 64, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    lo, hi = mixture_mi_bounds(h, 1.0)
    assert 0 < lo < hi <= math.log(6000)
    assert time.perf_counter() - t0 < 30


def test_bad_sigma():
    with pytest.raises(ValueError, match="sigma2"):
        kl_upper_bound(torch.zeros(3, 2), 0.0)


def test_status():
    assert mi_status(2.0, 1000) == CERTIFIED
    assert mi_status(8.0, 1000) == ABOVE_LOG_N
    assert mi_status(3.0, 1000, upper=2.5) == ABOVE_UPPER
    assert mi_status(8.0, 1000, upper=7.0) == ABOVE_UPPER
    with pytest.raises(ValueError):
        mi_status(float("nan"), 10)


def test_status_below_a_known_lower_bound():
    # AA-MINE's -9.1 nats on the MNIST-layer task and I(Y;L) = -46.9 were "certified" before
    assert mi_status(-9.1, 1000) == BELOW_LOWER
    assert mi_status(-46.9, 2048, upper=math.log(10)) == BELOW_LOWER
    assert mi_status(-1e-6, 1000) == BELOW_LOWER  # I >= 0 for every distribution
    assert mi_status(0.0, 1000) == CERTIFIED
    # a known lower bound (Bhattacharyya, Fano) above 0: a value under it is invalid
    assert mi_status(3.8, 1000, upper=6.9, lower=5.2) == BELOW_LOWER
    assert mi_status(5.5, 1000, upper=6.9, lower=5.2) == CERTIFIED
    assert mi_status(-0.5, 1000, lower=None) == BELOW_LOWER  # None: only I >= 0
    assert mi_status(-0.5, 1000, lower=-3.0) == BELOW_LOWER  # a looser bound does not excuse < 0
    assert STATUSES[-1] == BELOW_LOWER and len(set(STATUSES)) == 4


def test_label_range():
    assert label_mi_range(10) == (0.0, pytest.approx(math.log(10)))
    assert label_mi_in_range(1.0, 10)
    assert not label_mi_in_range(2.57, 10)
    assert not label_mi_in_range(-0.1, 10)
