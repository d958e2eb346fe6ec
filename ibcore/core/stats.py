"""Paired comparisons of runs that share a seed (same initialisation, subset and batches).

A claim "a beats b" is judged by the mean of the per-seed differences a_s - b_s with a 95 %
confidence interval from Student's t distribution (n - 1 degrees of freedom): "holds" when the
whole interval lies above 0, "does not hold" when it lies below 0, "inconclusive" when it
contains 0 or fewer than two pairs exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

VERDICTS = ("holds", "does not hold", "inconclusive")


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean of a_k - b_k over the pairs k with a ``confidence`` t interval and a verdict.

    Returns ``mean``, ``ci_low``, ``ci_high``, ``std`` (of the differences), ``n``, ``verdict``
    (one of :data:`VERDICTS`) and ``reason`` (why it is inconclusive, else None).
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples must have equal lengths, got {len(a)} and {len(b)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    if any(not math.isfinite(d) for d in diffs):
        raise ValueError("paired samples hold a non-finite value; drop that pair first")
    n = len(diffs)
    out: dict[str, Any] = {"n": n, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n:
        out["mean"] = sum(diffs) / n
    if n < 2:
        return {**out, "verdict": "inconclusive", "reason": f"{n} pair(s): no interval without at least 2"}
    from scipy.stats import t

    mean = out["mean"]
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if low > 0:
        verdict, reason = "holds", None
    elif high < 0:
        verdict, reason = "does not hold", None
    else:
        verdict, reason = "inconclusive", f"the {100 * confidence:g} % interval contains 0"
    return {**out, "std": std, "ci_low": low, "ci_high": high, "verdict": verdict, "reason": reason}


def pair_by_seed(records_a: Iterable[dict], records_b: Iterable[dict]) -> list[tuple[int, dict, dict]]:
    """(seed, record of a, record of b) for every ``config.seed`` present in both lists, sorted
    by seed. A seed that appears twice in one list is an error (the pairing would be ambiguous)."""

    def by_seed(records: Iterable[dict], name: str) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for r in records:
            seed = r["config"]["seed"]
            if seed in out:
                raise ValueError(f"records {name} hold seed {seed} twice; select one run per seed")
            out[seed] = r
        return out

    a, b = by_seed(records_a, "a"), by_seed(records_b, "b")
    return [(s, a[s], b[s]) for s in sorted(a.keys() & b.keys())]


def paired_records(
    records_a: Iterable[dict],
    records_b: Iterable[dict],
    value: Callable[[dict], float] = lambda r: 100 * r["metrics"]["test_accuracy"],
    confidence: float = 0.95,
) -> dict[str, Any]:
    """:func:`paired_difference` of ``value`` (default: test accuracy in %) over the seeds both
    lists share (:func:`pair_by_seed`); adds ``seeds``."""
    pairs = pair_by_seed(records_a, records_b)
    out = paired_difference([value(ra) for _, ra, _ in pairs], [value(rb) for _, _, rb in pairs], confidence)
    return {**out, "seeds": [s for s, _, _ in pairs]}
