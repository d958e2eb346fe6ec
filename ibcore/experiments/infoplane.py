"""Information-plane trajectories (I(X; L_i + eps), I(Y; L_i)) read from stored records.

IB records (layer-by-layer training) hold ``curves["layers"]``: per layer the checkpoint
``step`` and the DV values ``I_x``, ``I_y`` of the statistics networks trained alongside the
layer (AA-MINE with the tied mixture critic for I(X; L_i + eps), MINE for I(Y; L_i)), on the
first ``min(n_train, 2048)`` training samples. Cross-entropy records run with
``measure_steps > 0`` hold ``curves["ce"]`` with, per checkpoint k, ``I_x[k][i]`` and
``I_y[k][i]`` measured by the same estimators trained for ``measure_steps`` steps on the frozen
net.

Every point carries its status (issue 10): ``x_status`` of I(X; L_i + eps) by
:func:`ibcore.core.bounds.mi_status` against log N (N the samples the value was computed on) and, where
the record stores them (``I_x_lower``/``I_x_upper``, computed from the layer output at the
checkpoint), against the pairwise-KL upper bound; ``y_status`` of I(Y; L_i) against [0, H(Y)] and
the Fano lower bound from the checkpoint's probe (IB) or net (cross-entropy) test accuracy.
Stored records without the layer bounds (no weights are stored) get the log N status only.

The statuses live in :mod:`~ibcore.experiments.infoplane_status`, the compression table in
:mod:`~ibcore.experiments.infoplane_compression` and the exact-bound cache of stored weights in
:mod:`~ibcore.experiments.infoplane_bounds`; their names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ibcore.core.bounds import CERTIFIED, STATUSES
from ibcore.experiments.infoplane_bounds import (  # noqa: F401 - re-exported: the exact-bound cache
    MODEL_BOUNDS_FILE,
    MODEL_BOUNDS_VERSION,
    ensure_model_bounds,
    load_model_bounds,
    model_bounds,
)
from ibcore.experiments.infoplane_compression import (  # noqa: F401 - re-exported: the compression table
    CE_DROP,
    COMPRESSION_COLUMNS,
    _exact_columns,
    beta_compression,
    ce_compression,
    compression_table,
)
from ibcore.experiments.infoplane_status import (  # noqa: F401 - re-exported: the points' statuses
    NUM_CLASSES,
    Y_ABOVE_HY,
    Y_BELOW_FANO,
    Y_BELOW_ZERO,
    Y_OK,
    binary_entropy,
    eval_n,
    eval_size,
    eval_sizes,
    fano_lower_bound,
    label_entropy,
    label_status,
    mi_flag,
    x_status,
)

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
    "n",
    "I_x_lower",
    "I_x_upper",
    "x_status",
    "fano",
    "y_status",
]


def _at(values: list | None, k: int, i: int | None = None) -> float:
    """values[k] (or values[k][i]) as a float; NaN when absent."""
    try:
        v = values[k] if i is None else values[k][i]  # type: ignore[index]
    except (IndexError, TypeError):
        return math.nan
    return math.nan if v is None else float(v)


def _point(
    base: dict,
    layer: int,
    k: int,
    step: int,
    ix: float,
    iy: float,
    acc: float,
    bounds: tuple[float, float],
    h_y: float,
) -> dict:
    """One information-plane point: layer i at checkpoint k of a run, with its statuses."""
    lower, upper = bounds
    fano = fano_lower_bound(acc, NUM_CLASSES, h_y) if h_y == h_y else math.nan
    return {
        **base,
        "layer": layer,
        "k": k,
        "step": step,
        "progress": step / base["steps"],
        "I_x": ix,
        "I_y": iy,
        "accuracy": acc,
        "I_x_lower": lower,
        "I_x_upper": upper,
        "x_status": x_status(ix, base["n"], upper),
        "fano": fano,
        "y_status": label_status(iy, h_y if h_y == h_y else math.log(NUM_CLASSES), fano),
    }


def trajectories(records: Iterable[dict[str, Any]], label_entropies: dict[str, float] | None = None):
    """pandas DataFrame with one row per (record, layer, checkpoint); columns :data:`COLUMNS`.

    ``k`` is the checkpoint index, ``step`` its training step (within the layer's own training
    for IB, of the whole net for cross-entropy), ``progress`` = step / steps in (0, 1].
    ``accuracy`` is the checkpoint's probe test accuracy (IB) or the net's test accuracy (CE).
    ``n`` the samples the DV values were computed on; ``I_x_lower``/``I_x_upper`` the exact
    Bhattacharyya / pairwise-KL bounds where the record stores them (else NaN); ``x_status`` and
    ``y_status`` the statuses of the two estimates; ``fano`` the Fano lower bound on I(Y; L_i)
    from ``accuracy`` (the net's accuracy bounds every layer: Y-hat is a function of each L_i),
    with H(Y) from ``label_entropies[dataset]`` (NaN without it; ``y_status`` then checks
    [0, log 10] only). Records without trajectories (CE without ``measure_steps``) are skipped.
    """
    import pandas as pd

    label_entropies = label_entropies or {}
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
            "n": eval_n(r),
        }
        h_y = label_entropies.get(c["dataset"], math.nan)
        curves = r.get("curves") or {}
        if c["method"] == "ib":
            for layer in curves.get("layers", []):
                accs = layer.get("probe_test_accuracy") or []
                for k, (step, ix, iy) in enumerate(
                    zip(layer["step"], layer["I_x"], layer["I_y"], strict=False)
                ):
                    bounds = (  # names of the layer-wise trainer's bounds (training.py)
                        _at(layer.get("I_x_lower", layer.get("I_x_bhattacharyya_lower")), k),
                        _at(layer.get("I_x_upper", layer.get("I_x_kl_upper")), k),
                    )
                    rows.append(_point(base, layer["layer"], k, step, ix, iy, _at(accs, k), bounds, h_y))
        else:
            ce = curves.get("ce", {})
            accs = ce.get("test_accuracy") or []
            for k, (step, ixs, iys) in enumerate(
                zip(ce.get("step", []), ce.get("I_x", []), ce.get("I_y", []), strict=False)
            ):
                for i, (ix, iy) in enumerate(zip(ixs, iys, strict=True), 1):
                    bounds = (_at(ce.get("I_x_lower"), k, i - 1), _at(ce.get("I_x_upper"), k, i - 1))
                    rows.append(_point(base, i, k, step, ix, iy, _at(accs, k), bounds, h_y))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["x_certified"] = frame["x_status"] == CERTIFIED
    frame["y_ok"] = frame["y_status"] == Y_OK
    return frame


def status_counts(frame) -> dict[str, int]:
    """Number of points of each I(X; L + eps) status and of each I(Y; L) flag."""
    out = {s: int((frame["x_status"] == s).sum()) for s in STATUSES}
    for s in (Y_OK, Y_BELOW_ZERO, Y_ABOVE_HY, Y_BELOW_FANO):
        out[f"I_y {s}"] = int((frame["y_status"] == s).sum())
    return out


def mean_trajectories(frame):
    """Mean over seeds of each (method, dataset, fraction, beta, layer, k); adds ``seeds``.

    A mean point is certified (``x_certified``) only when every seed's I_x is; ``y_ok`` likewise;
    ``n`` is the smallest N, ``fano`` and the exact bounds are means over seeds.
    """
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
        n=("n", "min"),
        I_x_lower=("I_x_lower", "mean"),
        I_x_upper=("I_x_upper", "mean"),
        fano=("fano", "mean"),
        x_certified=("x_certified", "all"),
        y_ok=("y_ok", "all"),
        seeds=("seed", "nunique"),
    )
    return out.reset_index()
