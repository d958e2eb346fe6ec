"""The compression table of information-plane trajectories (:mod:`ibcore.experiments.infoplane`):
per curve, I_x at its first, peak and last checkpoint with the exact bounds, and from it the
compression by beta (IB) and the compression phase of cross-entropy training."""

from __future__ import annotations

import math
from typing import Any

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
