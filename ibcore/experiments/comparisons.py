"""Table 1's comparisons as the paper states them (issue 9): each row against another, per cell,
as a paired mean difference of test accuracy over seeds (runs with one seed share initialisation,
subset and batches) with a 95 % t interval and a three-state verdict
(:func:`ibcore.core.stats.paired_records`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ibcore.experiments.table1 import PAPER, row_of

#: The comparisons of Table 1 the paper states, as (a, b) for "a beats b".
COMPARISONS = (("ib", "iy"), ("ib", "ce"), ("iy", "ce"))

#: A cell whose rows' mean train accuracies lie more than this many points apart compares training
#: budgets, not methods (issue 9: CIFAR-10's IB rows reached 70-72 % train accuracy against 93 %
#: for cross-entropy): its comparisons are inconclusive whatever their intervals say.
BUDGET_GAP = 10.0


def budget_reason(train: dict[str, float]) -> str | None:
    """Why a cell's comparisons measure a training budget, from the mean train accuracy (%) of
    each of its rows: the lowest lies more than :data:`BUDGET_GAP` points below the highest.
    None when they do not (or fewer than two rows report one)."""
    known = {k: v for k, v in train.items() if v is not None and math.isfinite(v)}
    if len(known) < 2:
        return None
    low, high = min(known, key=known.get), max(known, key=known.get)
    if known[high] - known[low] <= BUDGET_GAP:
        return None
    return (
        f"a training budget, not the method: train accuracy {known[low]:.1f} % ({low}) against "
        f"{known[high]:.1f} % ({high}), more than {BUDGET_GAP:g} points apart; the runs to convergence "
        "were not run"
    )


def comparisons(records: Iterable[dict]) -> list[dict[str, Any]]:
    """Each comparison of :data:`COMPARISONS` per (dataset, fraction) that has both rows: the
    paired difference of test accuracy (points) over the seeds both rows share (same
    initialisation, subset and batches; :func:`ibcore.core.stats.paired_records`), its 95 %
    interval and verdict (holds / does not hold / inconclusive), the paper's direction, and each
    row's mean train accuracy. In a cell flagged by :func:`budget_reason` every verdict is
    "inconclusive" with that reason. Only complete runs count; ``records`` must hold one run
    per (cell, row, seed) (restrict them to a table's configs first)."""
    from ibcore.core.stats import paired_records

    cells: dict[tuple, dict[str, list[dict]]] = {}
    for r in records:
        if r.get("status", "complete") != "complete":
            continue
        c = r["config"]
        cells.setdefault((c["dataset"], c["fraction"]), {}).setdefault(row_of(c), []).append(r)
    out = []
    for (d, f), rows in cells.items():
        train = {row: _mean_train(recs) for row, recs in rows.items()}
        budget = budget_reason(train)
        paper = PAPER.get((d, f), {})
        for a, b in COMPARISONS:
            if a not in rows or b not in rows:
                continue
            diff = paired_records(rows[a], rows[b])
            verdict, reason = diff["verdict"], diff["reason"]
            if budget is not None:
                verdict, reason = "inconclusive", budget
            out.append(
                {
                    "dataset": d,
                    "fraction": f,
                    "claim": f"{a} > {b}",
                    "a": a,
                    "b": b,
                    "paper": paper[a] > paper[b] if a in paper and b in paper else None,
                    "difference": diff["mean"],
                    "ci_low": diff["ci_low"],
                    "ci_high": diff["ci_high"],
                    "n": diff["n"],
                    "seeds": diff["seeds"],
                    "verdict": verdict,
                    "reason": reason,
                    "train_a": train[a],
                    "train_b": train[b],
                }
            )
    return out


def _mean_train(records: Sequence[dict]) -> float:
    """Mean train accuracy (%) of ``records`` (NaN when any lacks one)."""
    values = [r["metrics"].get("train_accuracy") for r in records]
    if not values or any(v is None for v in values):
        return math.nan
    return 100 * sum(values) / len(values)


#: Row names of Table 1 in running text (MyST Markdown).
ROW_NAMES = {"ce": "cross-entropy", "iy": "$I(Y;L_i)$ only", "ib": "full IB"}


def interval_text(diff: dict[str, Any]) -> str:
    """'−1.02 points, 95 % CI [−2.05, +0.01], 3 paired seeds' from a paired difference (keys
    ``difference`` or ``mean``, ``ci_low``, ``ci_high``, ``n``)."""
    n = diff.get("n", 0)
    if not n:
        return "no paired runs stored"
    mean = diff["difference"] if "difference" in diff else diff["mean"]
    text = f"{mean:+.2f} points"
    if n >= 2:
        text += f", 95 % CI [{diff['ci_low']:+.2f}, {diff['ci_high']:+.2f}]"
    return (text + f", {n} paired seed{'s' if n != 1 else ''}").replace("-", "−")


def comparisons_markdown(found: Sequence[dict[str, Any]]) -> str:
    """One MyST line per cell and comparison of :func:`comparisons`: the paired difference with
    its interval, the verdict with its reason, and the paper's direction."""
    from ibcore.experiments.sweep import cell_name

    lines = []
    for c in found:
        a, b = ROW_NAMES[c["a"]], ROW_NAMES[c["b"]]
        paper = "" if c["paper"] is None else f"; the paper: {a} {'higher' if c['paper'] else 'lower'}"
        reason = f" ({c['reason']})" if c["reason"] else ""
        lines.append(
            f"- {cell_name(c['dataset'], c['fraction'])}: {a} minus {b} = {interval_text(c)}: "
            f"**{c['verdict']}**{reason}{paper}."
        )
    return "\n".join(lines)
