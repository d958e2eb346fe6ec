"""Reading the known-truth battery's records (:mod:`ibcore.experiments.truth`): the status of
each estimate, bias in % of the truth, and tables per task and per estimator."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ibcore.core.bounds import ABOVE_LOG_N, ABOVE_UPPER, BELOW_LOWER, CERTIFIED, mi_status

#: (fixed step budget, early stopping) pairs of the battery's project estimators (issue 15, item 2).
EARLY_STOPPING_PAIRS = (("MINE", "MINE es"), ("AA-MINE", "AA-MINE es"))


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
    frame = frame.sort_values(["family", "task", "estimator"], kind="stable")
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
        certified=("status", lambda st: int((st == CERTIFIED).sum())),
    )
    return out


def estimator_summary(records: Iterable[dict]):
    """Per estimator over all its tasks: mean |bias| %, median bias %, worst task, seconds."""
    frame = battery_frame(records)
    if frame.empty:
        return frame
    per_task = frame.groupby(["estimator", "task"]).agg(bias=("bias_pct", "mean"), t=("wall_time", "mean"))
    invalid = frame["status"].isin([BELOW_LOWER, ABOVE_UPPER]).groupby(frame["estimator"]).sum()
    above_log_n = (frame["status"] == ABOVE_LOG_N).groupby(frame["estimator"]).sum()
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
                "estimates": int((frame["estimator"] == est).sum()),
                "invalid": int(invalid.get(est, 0)),
                "above_log_n": int(above_log_n.get(est, 0)),
            }
        )
    import pandas as pd

    return pd.DataFrame(rows).set_index("estimator")


def early_stopping_table(records: Iterable[dict]):
    """Fixed step budget against early stopping (:data:`EARLY_STOPPING_PAIRS`), per task.

    Columns: the mean over seeds of each value (``fixed``, ``early``), their difference
    ``change``, the seed ``range`` (max - min over seeds, the larger of the two estimators'),
    ``within_spread`` (|change| <= range), ``closer_to_truth`` (the early-stopped mean is
    nearer the truth, the bracket's midpoint for MNIST), the mean steps trained (``steps_fixed``,
    ``steps_early``), mean CPU seconds of the early-stopped runs and mean wall seconds of both
    (wall time depends on the load of the machine each record was computed on).
    """
    import pandas as pd

    frame = battery_frame(records)
    rows = []
    for fixed, early in EARLY_STOPPING_PAIRS:
        for task, sub in frame[frame["estimator"].isin([fixed, early])].groupby("task", sort=False):
            a, b = sub[sub["estimator"] == fixed], sub[sub["estimator"] == early]
            if a.empty or b.empty:
                continue
            spread = max(
                float(a["value"].max() - a["value"].min()), float(b["value"].max() - b["value"].min())
            )
            change = float(b["value"].mean() - a["value"].mean())
            rows.append(
                {
                    "estimator": fixed,
                    "task": task,
                    "truth": float(a["truth"].mean()),
                    "fixed": float(a["value"].mean()),
                    "early": float(b["value"].mean()),
                    "change": change,
                    "range": spread,
                    "within_spread": abs(change) <= spread,
                    "closer_to_truth": abs(b["value"].mean() - b["truth"].mean())
                    < abs(a["value"].mean() - a["truth"].mean()),
                    "steps_fixed": float(a["stop_step"].mean()),
                    "steps_early": float(b["stop_step"].mean()),
                    "cpu_s_early": float(b["cpu_time"].mean()),
                    "wall_s_fixed": float(a["wall_time"].mean()),
                    "wall_s_early": float(b["wall_time"].mean()),
                    "seeds": int(min(len(a), len(b))),
                }
            )
    return pd.DataFrame(rows)


def target_table(path: str | os.PathLike):
    """The record of ``benchmarks/estimate_mi_target.py`` as (record, DataFrame with one row per
    task: estimate_mi's value, bias % and wall / CPU seconds, the peer's beside it); (None, None)
    when the file does not exist."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        return None, None
    record = json.loads(p.read_text())
    rows = pd.DataFrame(record["rows"])
    if rows.empty:
        return record, rows
    wide = rows.pivot_table(
        index=["task"], columns="method", values=["value", "bias_pct", "wall_s", "cpu_s"], sort=False
    )
    wide.insert(0, ("truth", ""), rows.groupby("task", sort=False)["truth"].first())
    return record, wide
