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
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ibcore.core.bounds import CERTIFIED, STATUSES, mi_status
from ibcore.core.training import EVAL_SAMPLES

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

#: Statuses of an I(Y; L) estimate: inside [0, H(Y)] and not below the Fano bound, or flagged.
Y_OK = "in range"
Y_BELOW_ZERO = "below 0"
Y_ABOVE_HY = "above H(Y)"
Y_BELOW_FANO = "below Fano bound"
#: Number of classes of every data set used (MNIST, CIFAR-10).
NUM_CLASSES = 10


def label_entropy(dataset: str, data_dir: str | None = None, split: str = "test") -> float:
    """H(Y) in nats of the labels of ``dataset``'s ``split`` (empirical frequencies)."""
    import numpy as np

    from ibcore.core.data import find_file

    with np.load(find_file(dataset, data_dir)) as arrays:
        y = arrays[f"y_{split}"]
    p = np.bincount(y.astype(int).ravel()) / y.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def binary_entropy(p: float) -> float:
    """h_b(p) in nats (0 at p = 0 or 1)."""
    if p <= 0 or p >= 1:
        return 0.0
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def fano_lower_bound(accuracy: float, num_classes: int, h_y: float) -> float:
    """Fano's lower bound on I(Y; L) from the accuracy of any classifier of Y from L (nats):

    H(Y | L) <= h_b(Pe) + Pe log(K - 1) with Pe = 1 - accuracy, so
    I(Y; L) >= H(Y) - h_b(Pe) - Pe log(K - 1), floored at 0 (I >= 0). NaN accuracy gives NaN.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if accuracy != accuracy:
        return math.nan
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    pe = 1.0 - float(accuracy)
    return max(0.0, h_y - binary_entropy(pe) - pe * math.log(num_classes - 1))


def label_status(value: float, h_y: float, fano: float = math.nan) -> str:
    """Flag of an I(Y; L) estimate: below 0, above H(Y) (no MI can be), below the Fano lower
    bound (the estimator lost track of the label information), or "in range"."""
    if value < 0:
        return Y_BELOW_ZERO
    if value > h_y:
        return Y_ABOVE_HY
    if fano == fano and value < fano:
        return Y_BELOW_FANO
    return Y_OK


def x_status(value: float, n: int, upper: float = math.nan) -> str:
    """:func:`ibcore.core.bounds.mi_status` of I(X; L + eps) with the layer's pairwise-KL upper bound
    when known (NaN: log N only)."""
    return mi_status(value, int(n), upper if upper == upper else None)


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


def eval_n(record: dict[str, Any]) -> int:
    """N of a record: the samples its DV values were computed on, min(n_train, 2048)."""
    return min(int(record["data_source"]["n_train"]), EVAL_SAMPLES)


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


def eval_sizes(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], int]:
    """Per (dataset, fraction): N, the number of samples its recorded DV values were computed
    on (min(n_train, 2048))."""
    return {
        (r["config"]["dataset"], r["config"]["fraction"]): eval_n(r)
        for r in records
        if (r.get("data_source") or {}).get("n_train")
    }


def eval_size(records: Iterable[dict[str, Any]]) -> int | None:
    """The smallest N of :func:`eval_sizes` over the records (None without records)."""
    sizes = eval_sizes(records)
    return min(sizes.values()) if sizes else None


COMPRESSION_COLUMNS = [
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
    "certified_last",
    "certified_all",
    "lower_last",
    "upper_last",
    "exact_fall",
]


def compression_table(mean_frame):
    """Per (method, dataset, fraction, beta, layer): I_x at the first, peak and last checkpoint,
    I_y at the last, ``drop`` = (peak - last) / |peak| (the relative fall of I_x after its
    peak; 0 when the last checkpoint is the peak), ``certified_last`` (the last I_x is certified)
    and ``certified_all`` (every checkpoint's I_x is), ``lower_last``/``upper_last`` (the exact
    bounds at the last checkpoint; NaN when not stored) and ``exact_fall`` (from the exact bounds
    alone: True when I_x certainly falls by more than :data:`CE_DROP` after some checkpoint,
    False when it certainly does not, None when the bounds cannot tell or are not stored)."""
    import pandas as pd

    rows = []
    if mean_frame.empty:
        return pd.DataFrame(columns=COMPRESSION_COLUMNS)
    certified = mean_frame["x_certified"] if "x_certified" in mean_frame else None
    for key, part in mean_frame.groupby(["method", "dataset", "fraction", "beta", "layer"], sort=True):
        part = part.sort_values("k")
        peak = float(part["I_x"].max())
        last = float(part["I_x"].iloc[-1])
        flags = certified.loc[part.index] if certified is not None else pd.Series(True, index=part.index)
        rows.append(
            {
                **dict(zip(["method", "dataset", "fraction", "beta", "layer"], key, strict=True)),
                "I_x_first": float(part["I_x"].iloc[0]),
                "I_x_peak": peak,
                "I_x_last": last,
                "I_y_last": float(part["I_y"].iloc[-1]),
                "drop": (peak - last) / abs(peak) if peak else 0.0,
                "certified_last": bool(flags.iloc[-1]),
                "certified_all": bool(flags.all()),
                **_exact_columns(part),
            }
        )
    return pd.DataFrame(rows, columns=COMPRESSION_COLUMNS)


def _exact_columns(part) -> dict[str, Any]:
    """``lower_last``, ``upper_last``, ``exact_fall`` of one curve (see :func:`compression_table`)."""
    import numpy as np

    if "I_x_upper" not in part or part["I_x_upper"].isna().any():
        return {"lower_last": math.nan, "upper_last": math.nan, "exact_fall": None}
    lo, hi = part["I_x_lower"].to_numpy(), part["I_x_upper"].to_numpy()
    fall = None
    if len(lo) > 1 and np.max(lo[:-1]) * (1 - CE_DROP) > hi[-1]:
        fall = True  # some earlier value is certainly more than CE_DROP above the last one
    elif np.all(hi * (1 - CE_DROP) <= lo[-1]):
        fall = False  # no value can be more than CE_DROP above the last one
    return {"lower_last": float(lo[-1]), "upper_last": float(hi[-1]), "exact_fall": fall}


def beta_compression(table) -> list[dict[str, Any]]:
    """For each IB (dataset, fraction, layer): final I_x at the largest beta vs at the smallest
    beta (the penalty's compression). ``lower`` is True when the largest beta ends lower;
    ``measurable`` only when both final values are certified or the exact bounds of the two
    final layer outputs do not overlap (then ``lower`` is read from the bounds, ``by`` says
    which: "exact bounds" or "estimates"); else ``lower`` decides nothing."""
    out = []
    ib = table[table["method"] == "ib"]
    for (d, f, layer), part in ib.groupby(["dataset", "fraction", "layer"], sort=True):
        if part["beta"].nunique() < 2:
            continue
        part = part.sort_values("beta")
        small, large = part.iloc[0], part.iloc[-1]
        lower = bool(large["I_x_last"] < small["I_x_last"])
        measurable = bool(small["certified_last"] and large["certified_last"])
        by = "estimates"
        if "upper_last" in part and math.isfinite(small["upper_last"]) and math.isfinite(large["upper_last"]):
            if large["upper_last"] < small["lower_last"] or large["lower_last"] > small["upper_last"]:
                lower, measurable, by = bool(large["upper_last"] < small["lower_last"]), True, "exact bounds"
        out.append(
            {
                "dataset": d,
                "fraction": f,
                "layer": int(layer),
                "beta_small": float(small["beta"]),
                "beta_large": float(large["beta"]),
                "I_x_small": float(small["I_x_last"]),
                "I_x_large": float(large["I_x_last"]),
                "lower": lower,
                "measurable": measurable,
                "by": by,
            }
        )
    return out


#: Relative fall of I_x after its peak that counts as a "compression phase" of CE training.
CE_DROP = 0.10


def ce_compression(table, threshold: float = CE_DROP) -> list[dict[str, Any]]:
    """For each cross-entropy (dataset, fraction, layer): does I_x fall by more than
    ``threshold`` (relative) after its peak (the compression phase of Shwartz-Ziv & Tishby)?
    ``measurable`` when the exact bounds decide it (``exact_fall`` of :func:`compression_table`;
    ``by`` = "exact bounds") or else when every checkpoint's I_x is certified (a peak above
    log N says nothing about the MI)."""
    out = []
    ce = table[table["method"] == "ce"]
    for _, r in ce.iterrows():
        exact = r.get("exact_fall")
        exact = None if exact is None or exact != exact else bool(exact)
        out.append(
            {
                "dataset": r["dataset"],
                "fraction": r["fraction"],
                "layer": int(r["layer"]),
                "I_x_peak": float(r["I_x_peak"]),
                "I_x_last": float(r["I_x_last"]),
                "drop": float(r["drop"]),
                "compressed": bool(exact) if exact is not None else bool(r["drop"] > threshold),
                "measurable": exact is not None or bool(r["certified_all"]),
                "by": "exact bounds" if exact is not None else "estimates",
            }
        )
    return out


# -- exact bounds from stored weights --------------------------------------------------------------

#: Beside the records: exact bounds of I(X; L_i + eps) of runs whose weights are stored.
MODEL_BOUNDS_FILE = "model_bounds.json"
MODEL_BOUNDS_VERSION = 1


def model_bounds(record: dict[str, Any], results_dir, data_dir: str | None = None) -> dict[str, Any]:
    """Exact (Bhattacharyya, pairwise-KL) bounds of I(X; L_i + eps) at the end of a run whose
    weights are stored (``<record>.model.pt``), for each trained layer, with X uniform over the
    record's N evaluation samples (the first min(n_train, 2048) of its training subset), as the
    record's final DV values were. CPU, seconds."""
    from ibcore.core.bounds import mixture_mi_bounds
    from ibcore.core.config import TrainConfig
    from ibcore.core.data import load_dataset
    from ibcore.experiments import table1

    config = TrainConfig.from_dict(record["config"])
    source = record.get("data_source") or {}
    data = load_dataset(
        config.dataset, data_dir=data_dir, fraction=config.fraction, subset_seed=source.get("subset_seed", 0)
    )
    n = eval_n(record)
    model = table1.load_model(config, results_dir, kind=record["kind"])
    model.eval()
    with torch.no_grad():
        reps = model.representations(data.x_train[:n])
    trained = config.max_layers or len(model)
    layers = {}
    for i in range(1, trained + 1):
        lo, hi = mixture_mi_bounds(reps[i - 1], config.sigma**2)
        layers[str(i)] = {"lower": lo, "upper": hi}
    return {"n": n, "sigma": config.sigma, "layers": layers, "beta": float(config.beta), "seed": config.seed}


def load_model_bounds(results_dir) -> dict[str, dict[str, Any]]:
    """The stored bounds of :func:`ensure_model_bounds`, by run id ({} when none)."""
    import json
    from pathlib import Path

    path = Path(results_dir) / MODEL_BOUNDS_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data.get("runs", {}) if data.get("version") == MODEL_BOUNDS_VERSION else {}


def ensure_model_bounds(results_dir, kind: str, data_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """:func:`model_bounds` of every record of ``kind`` under ``results_dir`` with stored weights,
    read from ``results_dir/model_bounds.json``; missing ones are computed and the file rewritten."""
    import json
    from pathlib import Path

    from ibcore.core.results import load_records, record_path

    results_dir = Path(results_dir)
    known = load_model_bounds(results_dir)
    runs = dict(known)
    for r in load_records(results_dir, kind):
        if r["run_id"] in runs:
            continue
        if not record_path(results_dir, kind, r["config"]).with_suffix(".model.pt").is_file():
            continue
        runs[r["run_id"]] = {"kind": kind, **model_bounds(r, results_dir, data_dir)}
    if len(runs) != len(known):
        payload = {
            "version": MODEL_BOUNDS_VERSION,
            "description": "Exact bounds of I(X; L_i + eps) at the end of runs whose weights are stored "
            "(ibcore.experiments.infoplane.model_bounds), by run id.",
            "runs": dict(sorted(runs.items())),
        }
        (results_dir / MODEL_BOUNDS_FILE).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return runs


def mi_flag(name: str, value: float, n: int | None) -> str:
    """The status of a mean MI estimate, for its table cell: empty when certified (I(X;L+eps)
    below log N) or in range (I(Y;L) in [0, log 10]), else a short flag."""
    if value != value or n is None:
        return ""
    if name == "I_x":
        status = x_status(value, n)
        return "" if status == CERTIFIED else f" ({status})"
    status = label_status(value, math.log(10))
    return "" if status == Y_OK else f" ({status})"
