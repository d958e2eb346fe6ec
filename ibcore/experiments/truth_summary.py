"""Reading the known-truth battery's records (:mod:`ibcore.experiments.truth`): the status of
each estimate, bias in % of the truth, and tables per task and per estimator."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ibcore.core.bounds import mi_status


def bias_pct(value: float, low: float, high: float) -> float:
    """Bias in % of the truth; for a bracketed truth [low, high], the distance to the nearer end
    in % of that end (0 inside the bracket)."""
    if low == high:
        return 100.0 * (value - low) / low
    if value < low:
        return 100.0 * (value - low) / low
    if value > high:
        return 100.0 * (value - high) / high
    return 0.0


def estimate_status(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """:func:`ibcore.core.bounds.mi_status` of one battery estimate, from what a reader knows
    without the truth: log of the ``n_eval`` samples it was evaluated on, I >= 0, and the known
    bounds of its task: the exact Bhattacharyya / pairwise-KL bracket (MNIST layer), [0, log K]
    (K-class label). Recomputed when records are read, so stored records get today's rule."""
    upper = lower = None
    if config["family"] == "mnist":
        lower, upper = metrics["truth_low"], metrics["truth_high"]
    elif config["family"] == "label":
        upper = math.log(config["classes"])
    return mi_status(metrics["value"], int(metrics["n_eval"]), upper, lower)


def battery_frame(records: Iterable[dict]):
    """One row per record: task, estimator, seed, value, truth (low, high), bias %, time, steps."""
    import pandas as pd

    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        rows.append(
            {
                "task": c["task"],
                "family": c["family"],
                "map": c.get("map"),
                "estimator": c["estimator"],
                "seed": c["seed"],
                "n": c["n"],
                "value": m["value"],
                "truth": m["truth"],
                "truth_low": m["truth_low"],
                "truth_high": m["truth_high"],
                "bias_pct": m["bias_pct"],
                "wall_time": m["wall_time"],
                "cpu_time": m.get("cpu_time", float("nan")),
                "stop_step": m.get("stop_step"),
                "status": estimate_status(c, m),
                "n_eval": m.get("n_eval"),
            }
        )
    return pd.DataFrame(rows)


def battery_summary(records: Iterable[dict]):
    """Per (task, estimator): mean bias %, its spread (sd over seeds), mean |bias| %, seconds per
    estimate, mean stopping step, seeds. A DataFrame indexed by task and estimator."""
    frame = battery_frame(records)
    if frame.empty:
        return frame
    frame["abs_bias_pct"] = frame["bias_pct"].abs()
    g = frame.groupby(["task", "estimator"], sort=False)
    out = g.agg(
        truth=("truth", "mean"),
        value=("value", "mean"),
        bias_pct=("bias_pct", "mean"),
        bias_sd=("bias_pct", "std"),
        abs_bias_pct=("abs_bias_pct", "mean"),
        seconds=("wall_time", "mean"),
        cpu_seconds=("cpu_time", "mean"),
        stop_step=("stop_step", "mean"),
        seeds=("seed", "count"),
    )
    return out


def estimator_summary(records: Iterable[dict]):
    """Per estimator over all its tasks: mean |bias| %, median bias %, worst task, seconds."""
    frame = battery_frame(records)
    if frame.empty:
        return frame
    per_task = frame.groupby(["estimator", "task"]).agg(bias=("bias_pct", "mean"), t=("wall_time", "mean"))
    rows = []
    for est, sub in per_task.groupby(level=0):
        worst = sub["bias"].abs().idxmax()[1]
        rows.append(
            {
                "estimator": est,
                "tasks": len(sub),
                "mean_abs_bias_pct": sub["bias"].abs().mean(),
                "median_bias_pct": sub["bias"].median(),
                "worst_task": worst,
                "worst_bias_pct": float(sub.loc[(est, worst), "bias"]),
                "seconds": sub["t"].mean(),
            }
        )
    import pandas as pd

    return pd.DataFrame(rows).set_index("estimator")
