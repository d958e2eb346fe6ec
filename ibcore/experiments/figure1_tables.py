"""Figure 1's records as tables: one row per record with its MI status (:func:`figure1_frame`)
and the mean over seeds with the references (:func:`figure1_table`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ibcore.core.bounds import ABOVE_UPPER, CERTIFIED, STATUSES, mi_status
from ibcore.experiments.figure1_configs import ALL_ESTIMATORS, KIND
from ibcore.experiments.figure1_reference import reference_key


def _mi_value(metrics: dict[str, Any]) -> float:
    if metrics.get("mi") is None:
        return math.inf if metrics.get("mi_is_inf") else math.nan
    return float(metrics["mi"])


def _num(value: Any) -> float:
    """A stored number, None as NaN."""
    return math.nan if value is None else float(value)


#: Order of the statuses from best to worst (a row over seeds takes its worst seed's status).
STATUS_ORDER = {s: k for k, s in enumerate(STATUSES)}


def record_status(mi: float, n: int, upper: float) -> str:
    """:func:`ibcore.core.bounds.mi_status` of one estimate; ``upper`` NaN or inf: no known upper bound."""
    if not n:
        return "n/a"
    if math.isnan(mi):
        return ABOVE_UPPER  # a diverged estimate is no MI value
    return mi_status(mi, int(n), upper if math.isfinite(upper) else None)


def figure1_frame(records: Iterable[dict[str, Any]], references: dict[str, dict] | None = None):
    """One row per record: panel, estimator, sigma2, seed, mi, n, true_mi, upper_bound, ref_lower,
    ref_upper, ref_mc, ref_gaussian, status, seconds.

    ``n`` is the held-out sample count of the estimate; ``true_mi`` Eq. 5 (panel b);
    ``upper_bound`` the Gaussian bound of all n_samples stored in the record (panel a); the
    ``ref_*`` columns are the exact references of panel a (:func:`ensure_references`: X uniform
    over the n held-out rows; NaN without references). ``status`` (:func:`ibcore.core.bounds.mi_status`):
    "above upper bound" when the estimate exceeds the tightest known upper bound (panel a: the
    pairwise-KL and the held-out Gaussian bound, or without references the stored Gaussian bound;
    panel b: the true MI), "above log N" when it exceeds log n, else "certified".
    """
    import pandas as pd

    references = references or {}
    rows = []
    for r in records:
        if r.get("kind", KIND) != KIND:
            continue
        c, m = r["config"], r["metrics"]
        s2 = float(c["sigma2"])
        mi = _mi_value(m)
        n = int(m.get("holdout_size") or 0)
        true_mi = bound = math.nan
        ref = {}
        if c["panel"] == "b":
            true_mi = math.inf if m.get("true_mi") is None else float(m["true_mi"])
            upper = true_mi
        else:
            bound = math.inf if m.get("gaussian_upper_bound") is None else float(m["gaussian_upper_bound"])
            ref = references.get(reference_key(c), {}) if "widths" in c else {}
            known = [v for v in (_num(ref.get("upper")), _num(ref.get("gaussian"))) if math.isfinite(v)]
            upper = min(known) if known else bound
        rows.append(
            {
                "panel": c["panel"],
                "estimator": c["estimator"],
                "sigma2": s2,
                "seed": c["seed"],
                "mi": mi,
                "n": n,
                "true_mi": true_mi,
                "upper_bound": bound,
                "ref_lower": _num(ref.get("lower")),
                "ref_upper": _num(ref.get("upper")),
                "ref_mc": _num(ref.get("mc")),
                "ref_gaussian": _num(ref.get("gaussian")),
                "status": record_status(mi, n, upper),
                "seconds": float(r.get("timings", {}).get("total_s", math.nan)),
            }
        )
    columns = [
        "panel",
        "estimator",
        "sigma2",
        "seed",
        "mi",
        "n",
        "true_mi",
        "upper_bound",
        "ref_lower",
        "ref_upper",
        "ref_mc",
        "ref_gaussian",
        "status",
        "seconds",
    ]
    return pd.DataFrame(rows, columns=columns)


TABLE_COLUMNS = [
    "panel",
    "estimator",
    "sigma2",
    "mean",
    "std",
    "n",
    "holdout",
    "true_mi",
    "upper_bound",
    "ref_lower",
    "ref_upper",
    "ref_mc",
    "rel_err",
    "certified",
    "status",
    "seconds",
]


def _worst(statuses) -> str:
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, len(STATUS_ORDER)))


def figure1_table(records: Iterable[dict[str, Any]], references: dict[str, dict] | None = None):
    """Mean, std and count over seeds of each (panel, estimator, sigma2), with the references.

    Columns (:data:`TABLE_COLUMNS`): mean, std (NaN for one seed), n (seeds), holdout (held-out N),
    true_mi (panel b, Eq. 5; inf at sigma2 = 0; NaN in panel a), upper_bound (panel a, mean over
    seeds of the stored Gaussian bound; NaN in panel b), ref_lower / ref_upper / ref_mc (panel a,
    means over seeds of the exact references; NaN without them), rel_err ((mean - true_mi) /
    true_mi where true_mi is finite), certified (seeds whose estimate is certified), status (the
    worst seed's status), seconds. Sorted by panel, estimator, sigma2.
    """
    import numpy as np
    import pandas as pd

    frame = figure1_frame(records, references)
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    keys = ["panel", "estimator", "sigma2"]
    grouped = frame.groupby(keys, sort=True)
    table = grouped.agg(
        mean=("mi", "mean"),
        std=("mi", "std"),
        n=("mi", "size"),
        holdout=("n", "min"),
        true_mi=("true_mi", "first"),
        upper_bound=("upper_bound", "mean"),
        ref_lower=("ref_lower", "mean"),
        ref_upper=("ref_upper", "mean"),
        ref_mc=("ref_mc", "mean"),
        certified=("status", lambda s: int((s == CERTIFIED).sum())),
        status=("status", _worst),
        seconds=("seconds", "mean"),
    ).reset_index()
    finite = np.isfinite(table["true_mi"]) & (table["true_mi"] > 0)
    table["rel_err"] = np.where(finite, (table["mean"] - table["true_mi"]) / table["true_mi"], np.nan)
    order = {e: k for k, e in enumerate(ALL_ESTIMATORS)}
    table = table.sort_values(
        ["panel", "estimator", "sigma2"], key=lambda s: s.map(order) if s.name == "estimator" else s
    )
    return table[TABLE_COLUMNS].reset_index(drop=True)


def log_slope(sigma2: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against log(1/sigma^2) (nats per e-fold of 1/sigma^2);
    NaN with fewer than two distinct sigma^2 > 0."""
    import numpy as np

    s2 = np.asarray(sigma2, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = (s2 > 0) & np.isfinite(v)
    if len(np.unique(s2[keep])) < 2:
        return math.nan
    return float(np.polyfit(np.log(1 / s2[keep]), v[keep], 1)[0])


def truth_excess(frame) -> tuple[int, float]:
    """Panel b of :func:`figure1_frame`: (number of estimates above Eq. 5 at sigma^2 > 0, the
    largest relative excess); (0, NaN) when none."""
    b = frame[(frame["panel"] == "b") & (frame["sigma2"] > 0) & (frame["mi"] > frame["true_mi"])]
    if b.empty:
        return 0, math.nan
    return len(b), float(((b["mi"] - b["true_mi"]) / b["true_mi"]).max())
