"""Claims decided by test accuracy (issue 9): Table 1 and the beta sweep. Every comparison is a
paired mean difference over seeds (runs with one seed share initialisation, subset and batches)
with a 95 % t interval; its verdict holds (interval above 0), does not hold (below 0) or is
inconclusive (the interval contains 0, or the runs measure a training budget)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ibcore.report.verdicts import FAILS, FROM_STATS, HOLDS, INCONCLUSIVE, claim_row


def interval(diff: dict[str, Any]) -> str:
    """The paired difference as text (:func:`ibcore.experiments.comparisons.interval_text`)."""
    from ibcore.experiments.comparisons import interval_text

    return interval_text(diff)


#: Table 1 claims by the comparison that decides them ("a > b": a beats b).
TABLE1_CLAIMS = (("ib_gt_iy", "ib > iy"), ("ib_gt_ce", "ib > ce"))


def table1_rows(records: Sequence[dict], source: str, params: dict | None = None) -> list[dict[str, Any]]:
    """Rows "ib_gt_iy" and "ib_gt_ce", one per data set cell, from the Table 1 records of the
    tied critic (restricted to the configs of ``params``, the profile's table1 entry, when
    given): the paired verdicts of :func:`ibcore.experiments.comparisons.comparisons`."""
    from ibcore.experiments import comparisons, table1
    from ibcore.experiments.sweep import cell_name, select_records

    if params and params.get("cells"):
        records = select_records(records, table1.configs_from_params(params))
    else:
        records = [
            r for r in records if not r["config"].get("measure_steps") and not r["config"].get("max_layers")
        ]
    found = comparisons.comparisons(records)
    rows = []
    for key, claim in TABLE1_CLAIMS:
        cells = [c for c in found if c["claim"] == claim]
        if not cells:
            rows.append(claim_row(key, source))
        for c in cells:
            beta = f", β = {params['beta']:g}" if params and params.get("beta") else ""
            ours = (
                f"{cell_name(c['dataset'], c['fraction'])}, tied critic (earlier runs{beta}): {interval(c)}"
            )
            if c["reason"] and "training budget" in c["reason"]:
                ours += f"; train accuracy {c['train_a']:.1f} % against {c['train_b']:.1f} %"
            rows.append(claim_row(key, source, ours, FROM_STATS[c["verdict"]], c["reason"] or ""))
    return rows


def penalty_rows(records: Sequence[dict], source: str, params: dict | None = None) -> list[dict[str, Any]]:
    """Rows "ib_gt_iy" and "ib_gt_ce" of Table 1 with the paper's penalty (the compression
    study's records, ``params`` its profile entry; :mod:`ibcore.experiments.penalty_table`): the
    paper's penalty at its validation-chosen beta against beta = 0 and cross-entropy, per cell.
    A cell whose runs are not stored yet is "not measured" with the note "pending"."""
    from ibcore.experiments import penalty_table
    from ibcore.experiments.sweep import cell_name

    if not params or not params.get("penalties"):
        return [claim_row(key, source) for key, _ in TABLE1_CLAIMS]
    out: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in TABLE1_CLAIMS}
    for cell in penalty_table.paper_penalty_table(params, records):
        paper = [r for r in cell["rows"] if r.get("paper_penalty")]
        if not paper:
            continue
        row = paper[0]
        name = f"{cell_name(cell['dataset'], cell['fraction'])}, the paper's penalty ({row['row']}"
        name += f", β = {row['beta']:g})" if row.get("beta") is not None else ")"
        for key, diff in (("ib_gt_iy", row.get("vs_iy")), ("ib_gt_ce", row.get("vs_ce"))):
            if not diff or not diff.get("n"):
                out[key].append(claim_row(key, source, f"{name}: {penalty_table.PENDING}", note="pending"))
                continue
            verdict = FROM_STATS[diff["verdict"]]
            notes = ["the 95 % interval contains 0" if verdict == INCONCLUSIVE else ""]
            if diff["n"] < row["seeds_declared"]:
                notes.append(f"{diff['n']} of {row['seeds_declared']} seeds stored")
            notes.append(
                f"compression study's runs: {cell['steps']} IB steps a layer, β chosen on validation"
            )
            note = "; ".join(filter(None, notes))
            out[key].append(claim_row(key, source, f"{name}: {interval(diff)}", verdict, note))
    return [r for key, _ in TABLE1_CLAIMS for r in (out[key] or [claim_row(key, source)])]


def sweep_rows(records: Sequence[dict], source: str, params: dict | None = None) -> list[dict[str, Any]]:
    """Row "sweep_best" per cell: some beta > 0 beats beta = 0. It holds when the paired
    interval of some beta lies above 0, does not hold when that of every beta lies below 0, and
    is inconclusive otherwise (:func:`ibcore.experiments.sweep.compare_to_zero`)."""
    from ibcore.experiments import sweep, table1

    if params and params.get("cells"):
        records = sweep.select_records(records, table1.configs_from_params(params))
    else:
        records = []
    by_cell: dict[tuple, list[dict]] = {}
    for c in sweep.compare_to_zero(records):
        by_cell.setdefault((c["dataset"], c["fraction"]), []).append(c)
    rows = []
    for (d, f), cs in by_cell.items():
        verdicts = {c["verdict"] for c in cs}
        if "holds" in verdicts:
            verdict = HOLDS
        elif verdicts == {"does not hold"}:
            verdict = FAILS
        else:
            verdict = INCONCLUSIVE
        best = max(cs, key=lambda c: c["difference"])
        counts = {v: sum(c["verdict"] == v for c in cs) for v in ("holds", "does not hold", "inconclusive")}
        rows.append(
            claim_row(
                "sweep_best",
                source,
                f"{sweep.cell_name(d, f)}: best β = {best['beta']:g}, {interval(best)}",
                verdict,
                f"of {len(cs)} β > 0: {counts['holds']} above 0, {counts['does not hold']} below 0, "
                f"{counts['inconclusive']} inconclusive (intervals not corrected for {len(cs)} comparisons)",
            )
        )
    return rows or [claim_row("sweep_best", source)]
