"""The paper's claims against what a profile's records show: one row per claim and source.

Every row is computed from stored records (and, for Figure 3, from the summary that the
Figure 3 page wrote beside them): nothing is typed in. A claim without records in a results
folder is "not measured in this profile". Claims about accuracy (Table 1, the beta sweep) are
decided by paired differences over seeds with a 95 % interval (:mod:`ibcore.report.accuracy_claims`,
issue 9); claims about mutual information only by certified values or exact bounds
(:mod:`ibcore.report.mi_claims`, issue 10). This module lists the claims and assembles the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ibcore.report.accuracy_claims import penalty_rows, sweep_rows, table1_rows
from ibcore.report.mi_claims import (
    FIG1_RATIO,
    every_layer_verdict,
    fig3_bounds,
    fig3_rows,
    figure1_rows,
    infoplane_rows,
)
from ibcore.report.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED, VERDICTS

__all__ = [
    "CLAIMS",
    "FAILS",
    "FIG1_RATIO",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_MEASURABLE",
    "NOT_MEASURED",
    "PAGES",
    "VERDICTS",
    "claims_for",
    "claims_table",
    "every_layer_verdict",
    "fig3_bounds",
    "fig3_rows",
    "figure1_rows",
    "infoplane_rows",
    "markdown_table",
    "penalty_rows",
    "profile_params",
    "sweep_rows",
    "table1_rows",
    "verdict_counts",
]

#: Evidence pages (all generated pages sit side by side in book/generated/).
PAGES = {
    "fig1": "[Figure 1](fig1_estimators.ipynb)",
    "table1": "[Table 1](table1.ipynb)",
    "sweep": "[β sweep](beta_sweep.ipynb)",
    "fig3": "[Figure 3](fig3_tsne.ipynb)",
    "plane": "[Information plane](info_plane.ipynb)",
}

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


def claims_for(
    results_dir: str | os.PathLike, profile: str, source: str | None = None
) -> list[dict[str, Any]]:
    """Every claim row computed from the records under ``results_dir`` of profile ``profile``
    (whose yml entries say which configs belong to which page). Table 1's claims come first from
    the runs with the paper's penalty (the compression study), then from the tied-critic runs."""
    from ibcore.core.results import load_records
    from ibcore.experiments import representation, table1

    results_dir = Path(results_dir)
    source = source or profile
    t1 = load_records(results_dir, table1.KIND)
    from ibcore.experiments import figure1

    fig1_records = load_records(results_dir, "figure1")
    rows = figure1_rows(fig1_records, source, figure1.load_references(results_dir))
    compression_records = load_records(results_dir, "compression", statuses=("complete", "diverged"))
    rows += penalty_rows(compression_records, source, profile_params(profile, "compression"))
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
