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


def compare_to_zero(table) -> list[dict[str, Any]]:
    """For each (dataset, fraction) and beta > 0: the accuracy difference to beta = 0 and how it
    compares with the seed spread. ``effect`` is "helps" / "hurts" when |difference| exceeds
    the combined standard deviation sqrt(std_beta^2 + std_0^2), "within spread" when it does
    not, and "helps (1 seed)" / "hurts (1 seed)" when either side has a single seed."""
    out = []
    for (d, f), cell in table.groupby(["dataset", "fraction"], sort=False):
        zero = cell[cell["beta"] == 0]
        if zero.empty:
            continue
        z = zero.iloc[0]
        for _, r in cell[cell["beta"] > 0].iterrows():
            diff = float(r["acc_mean"] - z["acc_mean"])
            single = r["n"] < 2 or z["n"] < 2
            spread = math.nan if single else math.hypot(r["acc_std"], z["acc_std"])
            direction = "helps" if diff > 0 else "hurts"
            if single:
                effect = f"{direction} (1 seed)"
            elif abs(diff) > spread:
                effect = direction
            else:
                effect = "within spread"
            out.append(
                {
                    "dataset": d,
                    "fraction": f,
                    "beta": float(r["beta"]),
                    "acc": float(r["acc_mean"]),
                    "acc_zero": float(z["acc_mean"]),
                    "difference": diff,
                    "spread": spread,
                    "effect": effect,
                }
            )
    return out


def cell_name(dataset: str, fraction: float) -> str:
    return f"{'MNIST' if dataset == 'mnist' else 'CIFAR-10'} {100 * fraction:g} %"


def verdict_markdown(table) -> str:
    """A computed sentence per data set: the best beta and where the penalty helps or hurts."""
    comparisons = compare_to_zero(table)
    if not comparisons:
        return "No data set has both $\\beta = 0$ and $\\beta > 0$ runs: nothing to compare."
    lines = []
    for (d, f), cell in table.groupby(["dataset", "fraction"], sort=False):
        rows = [c for c in comparisons if c["dataset"] == d and c["fraction"] == f]
        if not rows:
            continue
        best = cell.loc[cell["acc_mean"].idxmax()]
        groups = {
            "raises accuracy": [c["beta"] for c in rows if c["effect"].startswith("helps")],
            "lowers accuracy": [c["beta"] for c in rows if c["effect"].startswith("hurts")],
            "changes accuracy by less than the seed spread": [
                c["beta"] for c in rows if c["effect"] == "within spread"
            ],
        }
        clauses = [
            f"{what} at $\\beta \\in \\{{{', '.join(report.beta_tex(b) for b in bs)}\\}}$"
            for what, bs in groups.items()
            if bs
        ]
        text = (
            f"- **{report.cell_name(d, f)}**: best $\\beta = {report.beta_tex(best['beta'])}$ "
            f"({report.sig(best['acc_mean'])} % against {report.sig(rows[0]['acc_zero'])} % "
            "at $\\beta = 0$). "
            "The penalty " + "; ".join(clauses) + "."
        )
        if any("(1 seed)" in c["effect"] for c in rows):
            text += " With one seed on at least one side there is no spread to compare with: only signs."
        lines.append(text)
    return "\n".join(lines)
