"""Information-plane trajectories (I(X; L_i + eps), I(Y; L_i)) read from stored records.

IB records (layer-by-layer training) hold ``curves["layers"]``: per layer the checkpoint
``step`` and the DV values ``I_x``, ``I_y`` of the statistics networks trained alongside the
layer (AA-MINE with the tied mixture critic for I(X; L_i + eps), MINE for I(Y; L_i)), on the
first ``min(n_train, 2048)`` training samples. Cross-entropy records run with
``measure_steps > 0`` hold ``curves["ce"]`` with, per checkpoint k, ``I_x[k][i]`` and
``I_y[k][i]`` measured by the same estimators trained for ``measure_steps`` steps on the frozen
net.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ibcore.training import EVAL_SAMPLES

COLUMNS = [
    "method",
    "dataset",
    "fraction",
    "beta",
    "seed",
    "steps",
    "layer",
    "k",
    "step",
    "progress",
    "I_x",
    "I_y",
    "accuracy",
]


def _point(base: dict, layer: int, k: int, step: int, steps: int, ix: float, iy: float, accs: list) -> dict:
    """One information-plane point: layer i at checkpoint k of a run."""
    return {
        **base,
        "layer": layer,
        "k": k,
        "step": step,
        "progress": step / steps,
        "I_x": ix,
        "I_y": iy,
        "accuracy": accs[k] if k < len(accs) else math.nan,
    }


def trajectories(records: Iterable[dict[str, Any]]):
    """pandas DataFrame with one row per (record, layer, checkpoint); columns :data:`COLUMNS`.

    ``k`` is the checkpoint index, ``step`` its training step (within the layer's own training
    for IB, of the whole net for cross-entropy), ``progress`` = step / steps in (0, 1].
    ``accuracy`` is the checkpoint's probe test accuracy (IB) or the net's test accuracy (CE).
    Records without trajectories (CE without ``measure_steps``) are skipped.
    """
    import pandas as pd

    rows = []
    for r in records:
        c = r["config"]
        base = {
            "method": c["method"],
            "dataset": c["dataset"],
            "fraction": c["fraction"],
            "beta": float(c["beta"]),
            "seed": c["seed"],
            "steps": c["steps"],
        }
        curves = r.get("curves") or {}
        if c["method"] == "ib":
            for layer in curves.get("layers", []):
                accs = layer.get("probe_test_accuracy") or []
                for k, (step, ix, iy) in enumerate(
                    zip(layer["step"], layer["I_x"], layer["I_y"], strict=False)
                ):
                    rows.append(_point(base, layer["layer"], k, step, c["steps"], ix, iy, accs))
        else:
            ce = curves.get("ce", {})
            accs = ce.get("test_accuracy") or []
            for k, (step, ixs, iys) in enumerate(
                zip(ce.get("step", []), ce.get("I_x", []), ce.get("I_y", []), strict=False)
            ):
                for i, (ix, iy) in enumerate(zip(ixs, iys, strict=True), 1):
                    rows.append(_point(base, i, k, step, c["steps"], ix, iy, accs))
    return pd.DataFrame(rows, columns=COLUMNS)


def mean_trajectories(frame):
    """Mean over seeds of each (method, dataset, fraction, beta, layer, k); adds ``seeds``."""
    if frame.empty:
        return frame.assign(seeds=[])
    keys = ["method", "dataset", "fraction", "beta", "layer", "k"]
    g = frame.groupby(keys, sort=True)
    out = g.agg(
        step=("step", "first"),
        progress=("progress", "first"),
        I_x=("I_x", "mean"),
        I_y=("I_y", "mean"),
        accuracy=("accuracy", "mean"),
        seeds=("seed", "nunique"),
    )
    return out.reset_index()


def eval_sizes(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], int]:
    """Per (dataset, fraction): N, the number of samples its recorded DV values were computed
    on (min(n_train, 2048))."""
    return {
        (r["config"]["dataset"], r["config"]["fraction"]): min(int(r["data_source"]["n_train"]), EVAL_SAMPLES)
        for r in records
        if (r.get("data_source") or {}).get("n_train")
    }


def eval_size(records: Iterable[dict[str, Any]]) -> int | None:
    """The smallest N of :func:`eval_sizes` over the records (None without records)."""
    sizes = eval_sizes(records)
    return min(sizes.values()) if sizes else None


def compression_table(mean_frame):
    """Per (method, dataset, fraction, beta, layer): I_x at the first, peak and last checkpoint,
    I_y at the last, and ``drop`` = (peak - last) / |peak| (the relative fall of I_x after its
    peak; 0 when the last checkpoint is the peak)."""
    import pandas as pd

    rows = []
    if mean_frame.empty:
        return pd.DataFrame(
            columns=[
                "method",
                "dataset",
                "fraction",
                "beta",
                "layer",
                "I_x_first",
                "I_x_peak",
                "I_x_last",
                "I_y_last",
                "drop",
            ]
        )
    for key, part in mean_frame.groupby(["method", "dataset", "fraction", "beta", "layer"], sort=True):
        part = part.sort_values("k")
        peak = float(part["I_x"].max())
        last = float(part["I_x"].iloc[-1])
        rows.append(
            {
                **dict(zip(["method", "dataset", "fraction", "beta", "layer"], key, strict=True)),
                "I_x_first": float(part["I_x"].iloc[0]),
                "I_x_peak": peak,
                "I_x_last": last,
                "I_y_last": float(part["I_y"].iloc[-1]),
                "drop": (peak - last) / abs(peak) if peak else 0.0,
            }
        )
    return pd.DataFrame(rows)


def beta_compression(table) -> list[dict[str, Any]]:
    """For each IB (dataset, fraction, layer): final I_x at the largest beta vs at the smallest
    beta (the penalty's compression). ``lower`` is True when the largest beta ends lower."""
    out = []
    ib = table[table["method"] == "ib"]
    for (d, f, layer), part in ib.groupby(["dataset", "fraction", "layer"], sort=True):
        if part["beta"].nunique() < 2:
            continue
        part = part.sort_values("beta")
        small, large = part.iloc[0], part.iloc[-1]
        out.append(
            {
                "dataset": d,
                "fraction": f,
                "layer": int(layer),
                "beta_small": float(small["beta"]),
                "beta_large": float(large["beta"]),
                "I_x_small": float(small["I_x_last"]),
                "I_x_large": float(large["I_x_last"]),
                "lower": bool(large["I_x_last"] < small["I_x_last"]),
            }
        )
    return out


#: Relative fall of I_x after its peak that counts as a "compression phase" of CE training.
CE_DROP = 0.10


def ce_compression(table, threshold: float = CE_DROP) -> list[dict[str, Any]]:
    """For each cross-entropy (dataset, fraction, layer): does I_x fall by more than
    ``threshold`` (relative) after its peak (the compression phase of Shwartz-Ziv & Tishby)?"""
    out = []
    ce = table[table["method"] == "ce"]
    for _, r in ce.iterrows():
        out.append(
            {
                "dataset": r["dataset"],
                "fraction": r["fraction"],
                "layer": int(r["layer"]),
                "I_x_peak": float(r["I_x_peak"]),
                "I_x_last": float(r["I_x_last"]),
                "drop": float(r["drop"]),
                "compressed": bool(r["drop"] > threshold),
            }
        )
    return out
