"""Paired statistics (ibcore.core.stats): verdicts against hand-computed t intervals."""

from __future__ import annotations

import math

import pytest

from ibcore.core.stats import pair_by_seed, paired_difference, paired_records


def test_interval_matches_hand_computation():
    # differences 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.302653, half width 4.302653 / sqrt(3)
    out = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert out["n"] == 3 and out["mean"] == pytest.approx(2.0) and out["std"] == pytest.approx(1.0)
    assert out["ci_low"] == pytest.approx(2 - half) and out["ci_high"] == pytest.approx(2 + half)
    assert out["verdict"] == "inconclusive" and "contains 0" in out["reason"]  # 2 - 2.48 < 0


def test_three_verdicts():
    assert paired_difference([1.1, 1.2, 1.15, 1.3], [1.0, 1.0, 1.0, 1.0])["verdict"] == "holds"
    assert paired_difference([1.0, 1.0, 1.0, 1.0], [1.1, 1.2, 1.15, 1.3])["verdict"] == "does not hold"
    out = paired_difference([1.0, 2.0, 1.0, 2.0], [1.5, 1.5, 1.5, 1.5])
    assert out["verdict"] == "inconclusive" and out["ci_low"] < 0 < out["ci_high"]


def test_pairing_matters():
    """Large seed-to-seed spread but a constant paired gain: paired, the gain holds."""
    b = [80.0, 90.0, 70.0, 85.0, 75.0]
    a = [x + 0.5 + 0.01 * k for k, x in enumerate(b)]
    assert paired_difference(a, b)["verdict"] == "holds"


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_pairs_are_inconclusive(n):
    out = paired_difference([2.0] * n, [1.0] * n)
    assert out["verdict"] == "inconclusive" and out["n"] == n and "at least 2" in out["reason"]
    assert math.isnan(out["ci_low"])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        paired_difference([1.0, math.nan], [1.0, 2.0])


def rec(seed: int, acc: float, beta: float = 0.0) -> dict:
    return {"config": {"seed": seed, "beta": beta}, "metrics": {"test_accuracy": acc}}


def test_records_are_paired_by_seed():
    a = [rec(2, 0.92), rec(0, 0.90), rec(5, 0.5)]  # seed 5 has no partner
    b = [rec(0, 0.89), rec(1, 0.3), rec(2, 0.90)]
    pairs = pair_by_seed(a, b)
    assert [s for s, _, _ in pairs] == [0, 2]
    out = paired_records(a, b)
    assert out["seeds"] == [0, 2] and out["n"] == 2
    assert out["mean"] == pytest.approx(100 * ((0.90 - 0.89) + (0.92 - 0.90)) / 2)
    with pytest.raises(ValueError, match="seed 0 twice"):
        pair_by_seed([rec(0, 0.9), rec(0, 0.8)], b)
