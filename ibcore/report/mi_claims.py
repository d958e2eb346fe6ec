"""Claims decided by mutual-information values (issue 10): Figure 1, Figure 3 and the information
plane. Only certified values (below log N and every known upper bound,
:func:`ibcore.core.bounds.mi_status`) or exact bounds decide; a claim that only uncertified values
could decide is "not measurable"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ibcore.report.verdicts import FAILS, HOLDS, NOT_MEASURABLE
from ibcore.report.verdicts import claim_row as _row
from ibcore.report.verdicts import fmt as _fmt

#: AA-MINE's growth rate (slope of the estimate against log 1/sigma^2, over the sigma^2 > 0 where
#: both estimators are certified) must be at least this many times MINE's to count as "grows
#: while MINE stays flat" (a finite sample can never show unbounded growth: it is capped by log N).
FIG1_RATIO = 2.0


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
