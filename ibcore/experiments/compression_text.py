"""The compression study's answer in words (issue 9, item 7): what the page states and the intro
glues, written from the paired rows of :mod:`ibcore.experiments.compression`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VERDICTS = ("holds", "does not hold", "inconclusive")


def interval_text(row: dict[str, Any]) -> str:
    """ "+0.04 [-0.13, +0.22]": the paired mean difference (points) and its 95 % interval."""
    if row.get("mean") is None or row.get("n", 0) < 2:
        return "n < 2"
    return f"{row['mean']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"


def effect_text(row: dict[str, Any]) -> str:
    """ "aamine (+0.04 points, 95 % CI [-0.13, +0.22])"."""
    name = row["penalty"]
    if row.get("n", 0) < 2 or row.get("mean") is None:
        return f"{name} (n < 2)"
    return f"{name} ({row['mean']:+.2f} points, 95 % CI [{row['low']:+.2f}, {row['high']:+.2f}])"


def answer_markdown(rows: Sequence[dict[str, Any]], fraction: float, n_seeds: int) -> str:
    """The answer on the study's cell: the penalties grouped by verdict (paired difference to
    beta = 0 at the validation-chosen setting), the caveat of uncorrected intervals, and
    cross-entropy against beta = 0."""
    by_name = {r["penalty"]: r for r in rows}
    arms = {k: r.get("verdict", "inconclusive") for k, r in by_name.items() if k != "cross-entropy"}
    groups = {v: [by_name[k] for k, w in arms.items() if w == v] for v in VERDICTS}
    text = (
        f"**Answer on MNIST {100 * fraction:g} % ({n_seeds} paired seeds), each penalty at its "
        "validation-chosen setting against β = 0, test accuracy.** "
    )
    if not arms:
        text += "No penalty has all its selection runs stored yet. "
    phrases = {
        "holds": "Compression helps, beyond the seed spread, with",
        "does not hold": "It lowers test accuracy with",
        "inconclusive": "Inconclusive (the interval contains 0) with",
    }
    for verdict in VERDICTS:
        if groups[verdict]:
            text += f"{phrases[verdict]} {', '.join(map(effect_text, groups[verdict]))}. "
    if len(arms) > 1:
        text += (
            f"The intervals are not corrected for the {len(arms)} comparisons: a difference whose "
            "interval barely excludes 0 is weak evidence. "
        )
    ce = by_name.get("cross-entropy")
    if ce is not None and ce.get("n", 0) >= 2:
        text += (
            "End-to-end cross-entropy minus β = 0 layer-by-layer training: "
            f"{effect_text(ce).removeprefix('cross-entropy ')}."
        )
    return text


def stage3_markdown(rows: Sequence[dict[str, Any]], fraction: float, n_seeds: int) -> str:
    """The answer on the transfer cell (stage 3), or "" while fewer than two seeds are paired."""
    done = [r for r in rows if r.get("n", 0) >= 2 and r["penalty"] != "cross-entropy"]
    if not done:
        return ""
    return (
        f"**On MNIST {100 * fraction:g} % ({n_seeds} paired seeds, stage 3):** "
        + "; ".join(f"{effect_text(r)}: {r['verdict']}" for r in done)
        + "."
    )
