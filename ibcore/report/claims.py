"""The paper's claims against what a profile's records show: one row per claim and source.

Every row is computed from stored records (and, for Figure 3, from the summary that the
Figure 3 page wrote beside them): nothing is typed in. A claim without records in a results
folder is "not measured in this profile". Only certified MI values (below log N and every known
upper bound, :func:`ibcore.core.bounds.mi_status`) or exact bounds decide; a claim that only
uncertified values could decide is "not measurable" (issue 10).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HOLDS = "holds"
FAILS = "does not hold"
NOT_MEASURED = "not measured in this profile"
#: Records exist, but only uncertified MI values (above log N or above an upper bound) could
#: decide the claim (issue 10): no verdict.
NOT_MEASURABLE = "not measurable"
VERDICTS = (HOLDS, FAILS, NOT_MEASURABLE, NOT_MEASURED)

#: Evidence pages (all generated pages sit side by side in book/generated/).
PAGES = {
    "fig1": "[Figure 1](fig1_estimators.ipynb)",
    "table1": "[Table 1](table1.ipynb)",
    "sweep": "[β sweep](beta_sweep.ipynb)",
    "fig3": "[Figure 3](fig3_tsne.ipynb)",
    "plane": "[Information plane](info_plane.ipynb)",
}

#: AA-MINE's growth rate (slope of the estimate against log 1/sigma^2, over the sigma^2 > 0 where
#: both estimators are certified) must be at least this many times MINE's to count as "grows
#: while MINE stays flat" (a finite sample can never show unbounded growth: it is capped by log N).
FIG1_RATIO = 2.0

CLAIMS = [
    ("fig1_unbounded", "fig1", "AA-MINE grows without bound as σ² → 0 while MINE stays flat (Fig. 1)"),
    ("fig1_monotone", "fig1", "AA-MINE decreases as σ² grows (Fig. 1)"),
    ("ib_gt_iy", "table1", "Full IB beats I(Y;L) only: the penalty helps (Table 1)"),
    ("ib_gt_ce", "table1", "Full IB beats cross-entropy (Table 1: on par or slightly better)"),
    ("sweep_best", "sweep", "Some β > 0 beats β = 0 (penalty helps; β sweep)"),
    (
        "fig3",
        "fig3",
        "Larger β discretises the first layer: fewer effective points, lower I(X;L₁+ε) (Fig. 3)",
    ),
    (
        "plane_beta",
        "plane",
        "IB training compresses: the largest β ends with a lower I(X;Lᵢ+ε) in every layer",
    ),
    (
        "plane_ce",
        "plane",
        "Cross-entropy training has a compression phase: I(X;Lᵢ+ε) falls after its peak "
        "(Shwartz-Ziv & Tishby; not claimed by this paper)",
    ),
]


def profile_params(profile: str, stem: str, profiles_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The parameters of notebook ``stem`` in ``profiles/<profile>.yml`` ({} when absent)."""
    from ibcore.core import profiles

    try:
        prof = profiles.load_profile(profile, profiles_dir or profiles.PROFILES_DIR)
    except profiles.ProfileError:
        return {}
    return prof.get(stem, {})


def _row(
    key: str, source: str, ours: str = "", verdict: str = NOT_MEASURED, note: str = ""
) -> dict[str, Any]:
    return {"key": key, "source": source, "ours": ours, "verdict": verdict, "note": note}


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞"
    return f"{x:.3g}"


def figure1_rows(
    records: Sequence[dict], source: str, references: dict | None = None
) -> list[dict[str, Any]]:
    """Rows "fig1_unbounded" and "fig1_monotone" from figure1 records and their exact references
    (:func:`ibcore.experiments.figure1.ensure_references`); certified values only decide (issue 10).

    - unbounded growth: over the sigma^2 > 0 where every seed of both estimators is certified,
      AA-MINE's slope against log(1/sigma^2) is > 0 and at least :data:`FIG1_RATIO` times MINE's;
      fewer than two such sigma^2: "not measurable". The value at sigma^2 = 0 judges nothing.
    - monotone decrease: AA-MINE's mean does not increase along its certified sigma^2 > 0; fewer
      than two certified sigma^2: "not measurable".
    """
    from ibcore.experiments import figure1

    if not records:
        return [_row("fig1_unbounded", source), _row("fig1_monotone", source)]
    s = figure1.figure1_summary(figure1.figure1_table(records, references))
    log_n = f"log N = {_fmt(s['log_n'])}"
    rows = []
    both = s["certified_sigma2"]
    if len(both) < 2:
        rows.append(
            _row(
                "fig1_unbounded",
                source,
                f"certified at σ² = {', '.join(_fmt(v) for v in both) or 'none'}",
                NOT_MEASURABLE,
                "fewer than two σ² > 0 where both estimators are certified",
            )
        )
    else:
        holds = s["aa_slope"] > 0 and s["aa_slope"] >= FIG1_RATIO * max(s["mine_slope"], 0.0)
        rows.append(
            _row(
                "fig1_unbounded",
                source,
                f"over certified σ² ∈ [{_fmt(min(both))}, {_fmt(max(both))}]: AA-MINE rises "
                f"{_fmt(s['aa_slope'])}, MINE {_fmt(s['mine_slope'])}, the exact value "
                f"{_fmt(s['ref_slope'])} nats per e-fold of 1/σ²",
                HOLDS if holds else FAILS,
                f"criterion: AA-MINE's slope ≥ {FIG1_RATIO:g} × MINE's; growth beyond {log_n} is not "
                "certifiable, σ² = 0 judges nothing",
            )
        )
    certified = s["aa_certified_sigma2"]
    if s["aa_monotone"] is None:
        rows.append(
            _row(
                "fig1_monotone",
                source,
                f"AA-MINE certified at σ² = {', '.join(_fmt(v) for v in certified) or 'none'}",
                NOT_MEASURABLE,
                "fewer than two certified σ² > 0",
            )
        )
    else:
        dropped = len(s["aa_above_bound"]) + len(s["aa_above_log_n"])
        rows.append(
            _row(
                "fig1_monotone",
                source,
                f"AA-MINE over certified σ² ∈ [{_fmt(min(certified))}, {_fmt(max(certified))}]",
                HOLDS if s["aa_monotone"] else FAILS,
                f"monotone over the certified σ²; {dropped} uncertified σ² > 0 left out",
            )
        )
    return rows


def table1_rows(records: Sequence[dict], source: str, params: dict | None = None) -> list[dict[str, Any]]:
    """Rows "ib_gt_iy" and "ib_gt_ce", one per data set cell, from Table 1 records (restricted
    to the configs of ``params``, the profile's table1 entry, when given)."""
    from ibcore.experiments import table1
    from ibcore.experiments.sweep import cell_name, select_records

    if params and params.get("cells"):
        records = select_records(records, table1.configs_from_params(params))
    else:
        records = [
            r for r in records if not r["config"].get("measure_steps") and not r["config"].get("max_layers")
        ]
    claims = table1.claims(table1.summarise(records)) if records else []
    rows = []
    for key, claim in (("ib_gt_iy", "ib > iy"), ("ib_gt_ce", "ib > ce")):
        found = [c for c in claims if c["claim"] == claim]
        if not found:
            rows.append(_row(key, source))
        for c in found:
            spread = (
                math.hypot(c["std_a"], c["std_b"])
                if c["std_a"] == c["std_a"] and c["std_b"] == c["std_b"]
                else math.nan
            )
            note = (
                "1 seed: no spread"
                if math.isnan(spread)
                else (
                    "within seed spread: on par" if abs(c["difference"]) <= spread else "beyond seed spread"
                )
            )
            rows.append(
                _row(
                    key,
                    source,
                    f"{cell_name(c['dataset'], c['fraction'])}: {c['difference']:+.2f} points"
                    + ("" if math.isnan(spread) else f" (spread ± {spread:.2f})"),
                    HOLDS if c["ours"] else FAILS,
                    note,
                )
            )
    return rows


def sweep_rows(records: Sequence[dict], source: str, params: dict | None = None) -> list[dict[str, Any]]:
    """Row "sweep_best" per cell: the best beta > 0 against beta = 0."""
    from ibcore.experiments import sweep, table1

    if params and params.get("cells"):
        records = sweep.select_records(records, table1.configs_from_params(params))
    else:
        records = []
    table = sweep.sweep_table(records)
    rows = []
    for (d, f), cell in table.groupby(["dataset", "fraction"], sort=False) if len(table) else []:
        zero, pos = cell[cell["beta"] == 0], cell[cell["beta"] > 0]
        if zero.empty or pos.empty:
            continue
        best = pos.loc[pos["acc_mean"].idxmax()]
        diff = float(best["acc_mean"] - zero.iloc[0]["acc_mean"])
        rows.append(
            _row(
                "sweep_best",
                source,
                f"{sweep.cell_name(d, f)}: best β = {best['beta']:g}, {diff:+.2f} points vs β = 0",
                HOLDS if diff > 0 else FAILS,
                f"{int(cell['n'].min())} seed(s) per β",
            )
        )
    return rows or [_row("sweep_best", source)]


def fig3_bounds(model_bounds: dict | None) -> dict[float, tuple[float, float]]:
    """beta -> (lower, upper) exact bounds of I(X;L₁+ε) of the Figure 3 runs (mean over seeds),
    from :func:`ibcore.experiments.infoplane.ensure_model_bounds` of kind "fig3"."""
    by_beta: dict[float, list[tuple[float, float]]] = {}
    for run in (model_bounds or {}).values():
        layer = run.get("layers", {}).get("1")
        if run.get("kind") == "fig3" and layer:
            by_beta.setdefault(float(run["beta"]), []).append((layer["lower"], layer["upper"]))
    return {b: (sum(lo for lo, _ in v) / len(v), sum(hi for _, hi in v) / len(v)) for b, v in by_beta.items()}


def fig3_rows(summary: dict | None, source: str, model_bounds: dict | None = None) -> list[dict[str, Any]]:
    """Row "fig3" from the summary written by the Figure 3 page. The MI measure I(X;L₁+ε)
    decides when the exact bounds of the two runs' layer outputs (``model_bounds``, see
    :func:`fig3_bounds`) do not overlap, or else when both its estimates are certified (below
    log N, N = min(n_train, 2048) the samples of the record's DV value); the effective-point
    counts are not MI values."""
    verdict = (summary or {}).get("verdict") or {}
    if not verdict:
        return [_row("fig3", source)]
    from ibcore.core.bounds import CERTIFIED, mi_status
    from ibcore.core.data import SPECS
    from ibcore.core.training import EVAL_SAMPLES
    from ibcore.experiments.representation import SHORT

    n = None
    spec = SPECS.get(summary.get("dataset", ""), {})
    if spec.get("n_train") and summary.get("fraction"):
        n = min(int(round(spec["n_train"] * float(summary["fraction"]))), EVAL_SAMPLES)
    bl, bs = verdict["beta_large"], verdict["beta_small"]
    parts, decided, failing, undecided = [], 0, [], []
    for name, m in verdict["measures"].items():
        text = f"{SHORT.get(name, name)}: {m['large']:.3g} (β = {bl:g}) vs {m['small']:.3g} (β = {bs:g})"
        if name == "I_x":
            exact = fig3_bounds(model_bounds)
            statuses = {mi_status(m["large"], n), mi_status(m["small"], n)} if n else {"unknown N"}
            if bl in exact and bs in exact:
                (lo_l, hi_l), (lo_s, hi_s) = exact[bl], exact[bs]
                for beta, value, (_lo, hi) in ((bl, m["large"], exact[bl]), (bs, m["small"], exact[bs])):
                    if value > hi:
                        statuses.add(f"β = {beta:g} estimate above its upper bound")
                if hi_l < lo_s or lo_l > hi_s:
                    text += f"; exact bounds [{lo_l:.3g}, {hi_l:.3g}] vs [{lo_s:.3g}, {hi_s:.3g}]" + (
                        f" ({', '.join(sorted(statuses - {CERTIFIED}))})" if statuses != {CERTIFIED} else ""
                    )
                    parts.append(text)
                    decided += 1
                    if not hi_l < lo_s:
                        failing.append(SHORT.get(name, name))
                    continue
            if statuses != {CERTIFIED}:
                text += f" ({', '.join(sorted(statuses - {CERTIFIED}))}, N = {n})"
                undecided.append(SHORT.get(name, name))
                parts.append(text)
                continue
        parts.append(text)
        decided += 1
        if not m["lower"]:
            failing.append(SHORT.get(name, name))
    if failing:
        result, note = FAILS, "not lower: " + ", ".join(failing)
    elif undecided:
        result, note = NOT_MEASURABLE, "lower on the certified measures; uncertified: " + ", ".join(undecided)
    else:
        result, note = HOLDS, "lower on every measure"
    if failing and undecided:
        note += "; uncertified: " + ", ".join(undecided)
    return [_row("fig3", source, "; ".join(parts), result, note)]


def _how_decided(c: dict) -> str:
    """How a layer's comparison was decided, for the row's text: by certified estimates (no
    note), by the exact bounds of its layer outputs, or not at all (uncertified values)."""
    if not c["measurable"]:
        return " (uncertified)"
    return " (by exact bounds)" if c["by"] != "estimates" else ""


def every_layer_verdict(layers: int, measurable: int, agreeing: int) -> str:
    """Verdict of a claim about every layer: it fails when a layer with certified values
    contradicts it, holds when every layer has certified values that agree, and is "not
    measurable" otherwise (only uncertified values could decide it)."""
    if agreeing < measurable:
        return FAILS
    if measurable == layers and layers > 0:
        return HOLDS
    return NOT_MEASURABLE


def infoplane_rows(
    records: Sequence[dict], source: str, sweep_params: dict | None, plane_params: dict | None
):
    """Rows "plane_beta" (IB sweep records) and "plane_ce" (cross-entropy with measure_steps)."""
    from ibcore.experiments import infoplane, table1
    from ibcore.experiments.sweep import cell_name, select_records

    chosen = []
    if sweep_params and sweep_params.get("cells"):
        chosen += select_records(records, table1.configs_from_params(sweep_params))
    if plane_params and plane_params.get("cells") and plane_params.get("measure_steps"):
        chosen += select_records(records, table1.configs_from_params(plane_params))
    table = infoplane.compression_table(infoplane.mean_trajectories(infoplane.trajectories(chosen)))
    rows = []
    by_cell: dict[tuple, list] = {}
    for c in infoplane.beta_compression(table):
        by_cell.setdefault((c["dataset"], c["fraction"]), []).append(c)
    for (d, f), cs in by_cell.items():
        measurable = [c for c in cs if c["measurable"]]
        lowered = [c["layer"] for c in measurable if c["lower"]]
        values = ", ".join(
            f"L{c['layer']} {c['I_x_large']:.3g} vs {c['I_x_small']:.3g}" + _how_decided(c) for c in cs
        )
        verdict = every_layer_verdict(len(cs), len(measurable), len(lowered))
        note = f"lower in {len(lowered)} of {len(measurable)} layers with certified values or exact bounds"
        if len(measurable) < len(cs):
            note += f"; {len(cs) - len(measurable)} layer(s) not measurable (an uncertified value)"
        rows.append(
            _row(
                "plane_beta",
                source,
                f"{cell_name(d, f)}, β = {cs[0]['beta_large']:g} vs {cs[0]['beta_small']:g}: {values} nats",
                verdict,
                note,
            )
        )
    if not by_cell:
        rows.append(_row("plane_beta", source))
    ce_cells: dict[tuple, list] = {}
    for c in infoplane.ce_compression(table):
        ce_cells.setdefault((c["dataset"], c["fraction"]), []).append(c)
    for (d, f), cs in ce_cells.items():
        measurable = [c for c in cs if c["measurable"]]
        n = sum(c["compressed"] for c in measurable)
        verdict = every_layer_verdict(len(cs), len(measurable), n)
        note = (
            f"a fall > {100 * infoplane.CE_DROP:.0f} % in {n} of {len(measurable)} layers with "
            "certified values or exact bounds"
        )
        if len(measurable) < len(cs):
            note += f"; {len(cs) - len(measurable)} layer(s) not measurable (uncertified values)"
        rows.append(
            _row(
                "plane_ce",
                source,
                f"{cell_name(d, f)}: fall after the peak "
                + ", ".join(f"L{c['layer']} {100 * c['drop']:.0f} %" + _how_decided(c) for c in cs),
                verdict,
                note,
            )
        )
    if not ce_cells:
        rows.append(_row("plane_ce", source))
    return rows


def claims_for(
    results_dir: str | os.PathLike, profile: str, source: str | None = None
) -> list[dict[str, Any]]:
    """Every claim row computed from the records under ``results_dir`` of profile ``profile``
    (whose yml entries say which configs belong to which page)."""
    from ibcore.core.results import load_records
    from ibcore.experiments import representation, table1

    results_dir = Path(results_dir)
    source = source or profile
    t1 = load_records(results_dir, table1.KIND)
    from ibcore.experiments import figure1

    fig1_records = load_records(results_dir, "figure1")
    rows = figure1_rows(fig1_records, source, figure1.load_references(results_dir))
    rows += table1_rows(t1, source, profile_params(profile, "table1"))
    rows += sweep_rows(t1, source, profile_params(profile, "beta_sweep"))
    from ibcore.experiments import infoplane

    rows += fig3_rows(
        representation.read_summary(results_dir), source, infoplane.load_model_bounds(results_dir)
    )
    rows += infoplane_rows(
        t1, source, profile_params(profile, "beta_sweep"), profile_params(profile, "info_plane")
    )
    return rows


def claims_table(rows: Sequence[dict[str, Any]]):
    """pandas DataFrame, one row per (claim, source) in the order of :data:`CLAIMS`, with the
    claim text and its evidence link."""
    import pandas as pd

    order = {key: k for k, (key, _, _) in enumerate(CLAIMS)}
    text = {key: (claim, PAGES[page]) for key, page, claim in CLAIMS}
    frame = pd.DataFrame(list(rows), columns=["key", "source", "ours", "verdict", "note"])
    frame["claim"] = frame["key"].map(lambda k: text[k][0])
    frame["evidence"] = frame["key"].map(lambda k: text[k][1])
    frame["order"] = frame["key"].map(order)
    frame = frame.sort_values(["order"], kind="stable").drop(columns="order").reset_index(drop=True)
    return frame[["key", "claim", "source", "ours", "verdict", "note", "evidence"]]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame) -> str:
    """A Markdown pipe table of :func:`claims_table` (claim text shown once per claim)."""
    header = "| claim | evidence | profile | our numbers | verdict | note |\n|---|---|---|---|---|---|"
    lines, last = [header], None
    for _, r in frame.iterrows():
        first = r["key"] != last
        last = r["key"]
        verdict = f"**{r['verdict']}**" if r["verdict"] in (HOLDS, FAILS) else r["verdict"]
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    r["claim"] if first else "",
                    r["evidence"] if first else "",
                    r["source"],
                    r["ours"],
                    verdict,
                    r["note"],
                )
            )
            + " |"
        )
    return "\n".join(lines)


def verdict_counts(frame) -> dict[str, int]:
    """Number of rows with each verdict."""
    return {v: int((frame["verdict"] == v).sum()) for v in VERDICTS}
