"""The beta sweep: test accuracy and the two information terms of layer-by-layer IB training
as functions of beta (beta = 0 is the "I(Y;L_i) only" row of Table 1).

Its runs are Table 1 runs (kind "table1"), so the sweep shares records with Table 1 where
the configurations coincide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ibcore.core import formatting as report
from ibcore.core.config import TrainConfig
from ibcore.core.results import config_id


def select_records(records: Iterable[dict[str, Any]], configs: Sequence[TrainConfig]) -> list[dict]:
    """The complete records of exactly ``configs`` (matched by run id), in the order of
    ``configs``; diverged runs are left out (:func:`missing_configs` does not list them)."""
    done = [r for r in records if r.get("status", "complete") == "complete"]
    by_id = {r.get("run_id") or config_id(r["config"]): r for r in done}
    return [by_id[cid] for cid in (config_id(c.to_dict()) for c in configs) if cid in by_id]


def missing_configs(records: Iterable[dict[str, Any]], configs: Sequence[TrainConfig]) -> list[TrainConfig]:
    """The configs of ``configs`` that have no record (a diverged run's record counts: it ran)."""
    have = {r.get("run_id") or config_id(r["config"]) for r in records}
    return [c for c in configs if config_id(c.to_dict()) not in have]


def sweep_frame(records: Iterable[dict[str, Any]]):
    """One row per IB run: dataset, fraction, beta, seed, steps, acc (%), and per layer i the
    final ``I_x_<i>`` and ``I_y_<i>``, plus ``I_x_last`` / ``I_y_last`` of the last trained layer."""
    import pandas as pd

    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        if c["method"] != "ib" or r.get("status", "complete") != "complete":
            continue
        row = {
            "dataset": c["dataset"],
            "fraction": c["fraction"],
            "beta": float(c["beta"]),
            "seed": c["seed"],
            "steps": c["steps"],
            "acc": 100 * m["test_accuracy"],
        }
        for name in ("I_x", "I_y"):
            values = m.get(name) or []
            for i, v in enumerate(values, 1):
                row[f"{name}_{i}"] = v
            row[f"{name}_last"] = values[-1] if values else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_table(records: Iterable[dict[str, Any]]):
    """Mean, std and n over seeds per (dataset, fraction, beta) of every numeric column of
    :func:`sweep_frame`; columns ``<name>_mean`` / ``<name>_std`` and ``n``, sorted by beta."""
    import pandas as pd

    frame = sweep_frame(records)
    if frame.empty:
        return pd.DataFrame(columns=["dataset", "fraction", "beta", "n", "acc_mean", "acc_std"])
    values = [c for c in frame.columns if c not in ("dataset", "fraction", "beta", "seed", "steps")]
    g = frame.groupby(["dataset", "fraction", "beta"], sort=True)
    out = g[values].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n"] = g.size()
    out["steps"] = g["steps"].first()
    return out.reset_index().sort_values(["dataset", "fraction", "beta"]).reset_index(drop=True)


def layer_count(table) -> int:
    """Number of layers of a :func:`sweep_table` (its ``I_x_<i>_mean`` columns)."""
    return len(
        [c for c in table.columns if c.startswith("I_x_") and c[4:-5].isdigit() and c.endswith("_mean")]
    )


def compare_to_zero(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each (dataset, fraction) and beta > 0: the paired difference of test accuracy (points)
    to beta = 0 over the seeds both share (runs with one seed share initialisation, subset and
    batches), with its 95 % t interval and verdict (:func:`ibcore.core.stats.paired_difference`:
    holds / does not hold / inconclusive). ``acc`` and ``acc_zero`` are the means over those
    seeds. ``records`` must hold one run per (cell, beta, seed): restrict them to the sweep's
    configs first (:func:`select_records`)."""
    from ibcore.core.stats import paired_difference

    frame = sweep_frame(records)
    out: list[dict[str, Any]] = []
    if frame.empty:
        return out
    for (d, f), cell in frame.groupby(["dataset", "fraction"], sort=False):
        if cell.duplicated(["beta", "seed"]).any():
            raise ValueError(f"{cell_name(d, f)} holds a (beta, seed) twice; select one run each")
        by_beta = {b: dict(zip(g["seed"], g["acc"], strict=True)) for b, g in cell.groupby("beta")}
        zero = by_beta.get(0.0)
        if zero is None:
            continue
        for beta in sorted(b for b in by_beta if b > 0):
            seeds = sorted(by_beta[beta].keys() & zero.keys())
            a, b = [by_beta[beta][s] for s in seeds], [zero[s] for s in seeds]
            diff = paired_difference(a, b)
            out.append(
                {
                    "dataset": d,
                    "fraction": f,
                    "beta": float(beta),
                    "acc": sum(a) / len(a) if a else math.nan,
                    "acc_zero": sum(b) / len(b) if b else math.nan,
                    "difference": diff["mean"],
                    "ci_low": diff["ci_low"],
                    "ci_high": diff["ci_high"],
                    "n": diff["n"],
                    "verdict": diff["verdict"],
                    "reason": diff["reason"],
                }
            )
    return out


def cell_name(dataset: str, fraction: float) -> str:
    """'MNIST 1 %', 'MNIST 100 %', 'CIFAR-10' (a full data set other than MNIST has no %)."""
    if dataset != "mnist":
        return "CIFAR-10" if fraction >= 1 else f"CIFAR-10 {100 * fraction:g} %"
    return f"MNIST {100 * fraction:g} %"


def verdict_markdown(records: Iterable[dict[str, Any]]) -> str:
    """A computed sentence per data set: the best beta by mean accuracy, and at which beta the
    paired difference to beta = 0 holds, does not hold or is inconclusive (:func:`compare_to_zero`)."""
    records = list(records)
    comparisons = compare_to_zero(records)
    if not comparisons:
        return "No data set has both $\\beta = 0$ and $\\beta > 0$ runs: nothing to compare."
    table = sweep_table(records)
    lines = []
    for (d, f), cell in table.groupby(["dataset", "fraction"], sort=False):
        rows = [c for c in comparisons if c["dataset"] == d and c["fraction"] == f]
        if not rows:
            continue
        best = cell.loc[cell["acc_mean"].idxmax()]
        zero = cell[cell["beta"] == 0].iloc[0]
        groups = {
            "raises test accuracy (the 95 % interval of the paired difference lies above 0)": "holds",
            "lowers test accuracy (the interval lies below 0)": "does not hold",
            "is inconclusive (the interval contains 0)": "inconclusive",
        }
        clauses = [
            f"{what} at $\\beta \\in \\{{{', '.join(report.beta_tex(c['beta']) for c in found)}\\}}$"
            for what, verdict in groups.items()
            if (found := [c for c in rows if c["verdict"] == verdict])
        ]
        n = sorted({c["n"] for c in rows})
        seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
        if best["beta"] == 0:
            lead = f"$\\beta = 0$ has the best mean ({report.sig(best['acc_mean'])} %)"
        else:
            lead = (
                f"best mean at $\\beta = {report.beta_tex(best['beta'])}$ ({report.sig(best['acc_mean'])} % "
                f"against {report.sig(zero['acc_mean'])} % at $\\beta = 0$)"
            )
        text = (
            f"- **{report.cell_name(d, f)}**, {seeds} paired seed(s): {lead}. Against $\\beta = 0$ the "
            "penalty " + "; ".join(clauses) + "."
        )
        if len(rows) > 1:
            text += f" The {len(rows)} intervals are not corrected for being {len(rows)} comparisons."
        lines.append(text)
    return "\n".join(lines)
