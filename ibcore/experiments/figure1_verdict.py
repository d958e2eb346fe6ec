"""Figure 1's key numbers (:func:`figure1_summary`), the verdict judged from certified values only
(:func:`figure1_verdict`) and the table of the page (:func:`figure1_display_table`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ibcore.core.bounds import ABOVE_LOG_N, ABOVE_UPPER, CERTIFIED
from ibcore.experiments.figure1_configs import ESTIMATOR_LABELS
from ibcore.experiments.figure1_tables import log_slope


def figure1_summary(table) -> dict[str, Any]:
    """The key numbers of Figure 1 from :func:`figure1_table` (NaN where a panel is absent).

    Certified values only decide (issue 10):

    - ``certified_sigma2``: the sigma^2 > 0 of panel a at which every seed of both estimators is
      certified; ``aa_slope``, ``mine_slope``, ``ref_slope``: least-squares slopes over them of
      AA-MINE's and MINE's means and of the exact (Monte Carlo) reference against log(1/sigma^2);
    - ``aa_monotone``: AA-MINE's mean decreases (non-strictly) along its certified sigma^2 > 0
      (None with fewer than two);
    - ``aa_above_bound`` / ``aa_above_log_n``: the sigma^2 where some seed of AA-MINE is above an
      upper bound / above log N only; ``uncertified``: count of uncertified rows per estimator;
    - ``aa_zero``, ``mine_zero``, ``zero_status``: panel a at sigma^2 = 0 (reported, never judged:
      AA-MINE's value there is set by its critic's scale floor);
    - ``below_lower``: per estimator, the sigma^2 > 0 of panel a where its mean lies below the exact
      (Bhattacharyya) lower bound (certified, but an under-estimate);
    - ``log_n``: log of the held-out N of panel a; ``sigma2_max``, ``aa_max``, ``mine_max``;
    - ``aa_max_rel_err``, ``mine_max_rel_err``, ``tied_max_rel_err``, ``aa_worst_sigma2``: panel b
      against Eq. 5 over sigma^2 > 0; ``tied_max_rel_err``, ``penalty_max_rel_err``: the same for
      the forms of AA-MINE that training uses (the tied critic, the penalty critic), when run.
    """
    import numpy as np

    nan = float("nan")
    out: dict[str, Any] = {
        "aa_zero": nan,
        "mine_zero": nan,
        "zero_status": {},
        "aa_max": nan,
        "mine_max": nan,
        "sigma2_max": nan,
        "log_n": nan,
        "certified_sigma2": [],
        "aa_slope": nan,
        "mine_slope": nan,
        "ref_slope": nan,
        "aa_monotone": None,
        "aa_certified_sigma2": [],
        "aa_above_bound": [],
        "aa_above_log_n": [],
        "uncertified": {},
        "aa_max_rel_err": nan,
        "mine_max_rel_err": nan,
        "aa_worst_sigma2": nan,
        "tied_max_rel_err": nan,
        "penalty_max_rel_err": nan,
        "below_lower": {},
    }

    def rows(panel: str, est: str):
        part = table[(table["panel"] == panel) & (table["estimator"] == est)]
        return part.sort_values("sigma2").set_index("sigma2")

    aa, mine = rows("a", "aamine"), rows("a", "mine")
    for est, part in (("aamine", aa), ("mine", mine)):
        if len(part):
            out["uncertified"][est] = int((part["status"] != CERTIFIED).sum())
        if 0.0 in part.index:
            out["zero_status"][est] = str(part.loc[0.0, "status"])
    if len(aa):
        out["sigma2_max"] = float(aa.index.max())
        out["aa_max"] = float(aa["mean"].iloc[-1])
        out["log_n"] = math.log(int(aa["holdout"].min())) if aa["holdout"].min() > 0 else nan
        if 0.0 in aa.index:
            out["aa_zero"] = float(aa.loc[0.0, "mean"])
        pos = aa[aa.index > 0]
        out["aa_above_bound"] = sorted(float(s) for s in pos.index[pos["status"] == ABOVE_UPPER])
        out["aa_above_log_n"] = sorted(float(s) for s in pos.index[pos["status"] == ABOVE_LOG_N])
        certified = pos[pos["status"] == CERTIFIED]
        out["aa_certified_sigma2"] = [float(s) for s in certified.index]
        if len(certified) >= 2:
            out["aa_monotone"] = bool(np.all(np.diff(certified["mean"].to_numpy()) <= 0))
    for est, part in (("aamine", aa), ("mine", mine)):
        pos = part[part.index > 0]
        if len(pos) and pos["ref_lower"].notna().any():
            out["below_lower"][est] = [float(s) for s in pos.index[pos["mean"] < pos["ref_lower"]]]
    if len(mine):
        out["mine_max"] = float(mine["mean"].iloc[-1])
        if 0.0 in mine.index:
            out["mine_zero"] = float(mine.loc[0.0, "mean"])
    if len(aa) and len(mine):
        both = [
            float(s)
            for s in aa.index
            if s > 0
            and s in mine.index
            and aa.loc[s, "status"] == CERTIFIED
            and mine.loc[s, "status"] == CERTIFIED
        ]
        out["certified_sigma2"] = both
        if len(both) >= 2:
            out["aa_slope"] = log_slope(both, aa.loc[both, "mean"])
            out["mine_slope"] = log_slope(both, mine.loc[both, "mean"])
            out["ref_slope"] = log_slope(both, aa.loc[both, "ref_mc"])
    for est, key in (
        ("aamine", "aa_max_rel_err"),
        ("mine", "mine_max_rel_err"),
        ("tied", "tied_max_rel_err"),
        ("aamine_penalty", "penalty_max_rel_err"),
    ):
        part = table[(table["panel"] == "b") & (table["estimator"] == est) & np.isfinite(table["rel_err"])]
        if len(part):
            worst = part.loc[part["rel_err"].abs().idxmax()]
            out[key] = float(abs(worst["rel_err"]))
            if est == "aamine":
                out["aa_worst_sigma2"] = float(worst["sigma2"])
    return out


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def _grid(values: Sequence[float]) -> str:
    return ", ".join(_fmt(v) for v in values) if values else "none"


def figure1_verdict(summary: dict[str, Any]) -> str:
    """A Markdown paragraph stating what the numbers show, built only from ``summary``."""
    lines = []
    log_n = summary.get("log_n", math.nan)
    if not math.isnan(summary["aa_zero"]):
        lines.append(
            f"- σ² = 0: the true MI is infinite for a continuous input (log N = {_fmt(log_n)} nats for X "
            f"uniform over the held-out samples). AA-MINE's DV value there ({_fmt(summary['aa_zero'])} nats, "
            f"{summary['zero_status'].get('aamine', 'n/a')}) is set by the floor of its critic's scale, "
            f"not by the data: it is drawn as “→ ∞” and judges nothing. MINE: {_fmt(summary['mine_zero'])} "
            f"nats ({summary['zero_status'].get('mine', 'n/a')})."
        )
    if summary["aa_monotone"] is not None or summary["aa_above_bound"] or summary["aa_above_log_n"]:
        lines.append(
            f"- Uncertified AA-MINE values at σ² > 0: above an upper bound at σ² = "
            f"{_grid(summary['aa_above_bound'])}; above log N only at σ² = "
            f"{_grid(summary['aa_above_log_n'])}. They are drawn hollow and judge nothing."
        )
    panel_a = not math.isnan(summary["sigma2_max"])
    if summary["aa_monotone"] is not None:
        lines.append(
            "- AA-MINE decreases as σ² grows, over its certified σ² = "
            f"{_grid(summary['aa_certified_sigma2'])}: **{'yes' if summary['aa_monotone'] else 'no'}**."
        )
    elif panel_a:
        lines.append(
            "- AA-MINE decreases as σ² grows: not measurable (certified at σ² = "
            f"{_grid(summary['aa_certified_sigma2'])}; two are needed)."
        )
    if not math.isnan(summary["aa_slope"]):
        lines.append(
            "- Growth as σ² → 0, over the σ² where both are certified "
            f"({_grid(summary['certified_sigma2'])}): "
            f"AA-MINE rises {_fmt(summary['aa_slope'])} nats per e-fold of 1/σ², MINE "
            f"{_fmt(summary['mine_slope'])}, the exact value {_fmt(summary['ref_slope'])}."
        )
    elif panel_a:
        lines.append(
            "- Growth as σ² → 0: not measurable (fewer than two σ² > 0 where both estimators are certified)."
        )
    below = summary.get("below_lower", {})
    if below:
        lines.append(
            "- Below the exact (Bhattacharyya) lower bound, i.e. certified but under-estimating: "
            + "; ".join(f"{ESTIMATOR_LABELS[e]} at σ² = {_grid(v)}" for e, v in below.items())
            + "."
        )
    if not math.isnan(summary["aa_max_rel_err"]):
        lines.append(
            f"- Linear-Gaussian check (panel b), largest error vs Eq. 5 over σ² > 0: "
            f"AA-MINE {100 * summary['aa_max_rel_err']:.1f} % (at σ² = {_fmt(summary['aa_worst_sigma2'])}), "
            f"MINE {100 * summary['mine_max_rel_err']:.1f} %"
            + "".join(
                f", {ESTIMATOR_LABELS[est]} {100 * summary[key]:.1f} %"
                for est, key in (("tied", "tied_max_rel_err"), ("aamine_penalty", "penalty_max_rel_err"))
                if not math.isnan(summary.get(key, math.nan))
            )
            + "."
        )
    return "\n".join(lines) if lines else "No records to judge."


def figure1_display_table(table):
    """:func:`figure1_table` as strings for a page: "mean ± std", status, references, error."""
    import pandas as pd

    columns = [
        "panel",
        "σ²",
        "estimator",
        "estimate [nats]",
        "status",
        "exact reference [nats]",
        "Gaussian bound [nats]",
        "rel. error",
        "seeds",
    ]
    if table.empty:
        return pd.DataFrame(columns=columns)

    def pm(row) -> str:
        if row["panel"] == "a" and row["estimator"] != "mine" and row["sigma2"] == 0:
            return f"→ ∞ (DV value {_fmt(row['mean'])}: the critic's scale floor)"
        mean, std = _fmt(row["mean"]), row["std"]
        return mean if not (isinstance(std, float) and math.isfinite(std)) else f"{mean} ± {_fmt(std)}"

    def status(row) -> str:
        n = int(row["n"])
        text = row["status"]
        if row["certified"] not in (0, n):
            text += f" ({int(row['certified'])} of {n} seeds certified)"
        return text

    def reference(row) -> str:
        if row["panel"] == "b":
            return f"{_fmt(row['true_mi'])} (Eq. 5)"
        if math.isnan(row["ref_lower"]):
            return "not computed"
        if row["sigma2"] == 0:
            return f"{_fmt(row['ref_mc'])} = log N (∞ for continuous X)"
        return f"[{_fmt(row['ref_lower'])}, {_fmt(row['ref_upper'])}], MC {_fmt(row['ref_mc'])}"

    return pd.DataFrame(
        {
            "panel": table["panel"],
            "σ²": [_fmt(s) for s in table["sigma2"]],
            "estimator": [ESTIMATOR_LABELS.get(e, e) for e in table["estimator"]],
            "estimate [nats]": table.apply(pm, axis=1),
            "status": table.apply(status, axis=1),
            "exact reference [nats]": table.apply(reference, axis=1),
            "Gaussian bound [nats]": [
                "" if p == "b" else _fmt(u) for p, u in zip(table["panel"], table["upper_bound"], strict=True)
            ],
            "rel. error": [f"{100 * r:+.1f} %" if math.isfinite(r) else "" for r in table["rel_err"]],
            "seeds": table["n"].astype(int),
        }
    )[columns]
