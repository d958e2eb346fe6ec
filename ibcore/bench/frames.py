"""The benchmark records read back for the book page (``nbs/performance.py``): records by
name and their tables.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ibcore.bench.record import KIND
from ibcore.core.results import project_path


def read_kind(folder: str | os.PathLike, kind: str, pattern: str = "*.json") -> dict[str, dict[str, Any]]:
    """The JSON records of ``kind`` among ``<folder>/<pattern>``, by file name without ``.json``,
    oldest first (by their ``date``); unreadable files and other kinds are left out."""
    folder = project_path(folder)
    found = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("kind") == kind:
            found.append((record.get("date", ""), path.stem, record))
    return {name: record for _, name, record in sorted(found, key=lambda f: (f[0], f[1]))}


def read_records(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The benchmark records ``<folder>/<name>.json``, by name, oldest first."""
    return read_kind(folder, KIND)


def read_paired(folder: str | os.PathLike, name: str = "paired_before_after") -> dict[str, Any] | None:
    """The record of ``benchmarks/paired_before_after.py`` in ``folder``, or None."""
    path = project_path(folder) / f"{name}.json"
    try:
        record = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == "bench_paired" else None


def read_projections(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The projection records (:mod:`ibcore.bench.projection`) in ``folder``, by name, oldest first."""
    from ibcore.bench.projection import PROJECTION_KIND

    return read_kind(folder, PROJECTION_KIND)


def case_label(beta: float, penalty: str = "tied") -> str:
    """The column suffix of an IB case: "beta=0.001" (the tied critic, Table 1's rows) or
    "aamine, beta=0.001" (another penalty)."""
    return f"beta={beta:g}" if penalty == "tied" else f"{penalty}, beta={beta:g}"


def training_frame(record: dict[str, Any]):
    """One row per net and layer: CE and IB milliseconds per iteration and their ratios, one
    pair of columns per case (beta, penalty; records before the penalty was timed hold the tied
    critic only)."""
    import pandas as pd

    rows = record["training_steps"]
    ce = {r["net"]: r for r in rows if r["step"] == "ce"}
    out = []
    for r in rows:
        if r["step"] != "ib":
            continue
        out.append(
            {
                "net": r["net"],
                "layer": r["layer"],
                "case": case_label(r["beta"], r.get("penalty", "tied")),
                "CE ms": 1e3 * ce[r["net"]]["median_s"],
                "IB ms": 1e3 * r["median_s"],
                "IB / CE": r["ratio_to_ce"],
                "IB ops": r.get("ops_per_iteration"),
                "CE ops": ce[r["net"]].get("ops_per_iteration"),
            }
        )
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    values = ["IB ms", "IB / CE"] + (["IB ops"] if frame["IB ops"].notna().any() else [])
    wide = frame.pivot_table(index=["net", "layer"], columns="case", values=values, sort=False)
    wide.columns = [f"{what} ({case})" for what, case in wide.columns]
    first = frame.groupby(["net", "layer"], sort=False)
    wide.insert(0, "CE ms", first["CE ms"].first())
    if frame["CE ops"].notna().any():
        wide.insert(1, "CE ops", first["CE ops"].first())
    return wide.reset_index()


def estimator_frame(record: dict[str, Any]):
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "estimator": {"mine": "MINE", "aamine": "AA-MINE"}[r["estimator"]],
                "batch": r["batch_size"],
                "steps / s": r["steps_per_s"],
                "IQR": r["iqr_steps_per_s"],
            }
            for r in record["estimators"]
        ]
    )


def pipeline_frame(pipeline: dict[str, Any]):
    """One row per profile and notebook (and the whole job), wall seconds."""
    import pandas as pd

    rows = []
    for profile, p in pipeline.items():
        training = p.get("training") or {}
        if training.get("workers", 1) > 1:
            rows.append(
                {
                    "profile": profile,
                    "notebook": f"(training: {training.get('runs')} runs, {training['workers']} workers)",
                    "seconds": training.get("seconds"),
                    "status": "done",
                }
            )
        for stem, e in p["notebooks"].items():
            rows.append(
                {"profile": profile, "notebook": stem, "seconds": e["seconds"], "status": e["status"]}
            )
        rows.append(
            {"profile": profile, "notebook": "(whole job)", "seconds": p["total_s"], "status": p["status"]}
        )
    return pd.DataFrame(rows, columns=["profile", "notebook", "seconds", "status"])


def speedups(before: dict[str, Any], after: dict[str, Any]):
    """Per training iteration and estimator: before / after time (> 1 is faster after)."""
    import pandas as pd

    def key(r: dict[str, Any]) -> tuple:
        return (r["net"], r["step"], r["beta"], r.get("penalty", "tied"), r["layer"])

    old = {key(r): r for r in before["training_steps"]}
    rows = []
    for r in after["training_steps"]:
        b = old.get(key(r))
        if b is None:
            continue
        rows.append(
            {
                "what": f"{r['net']} "
                + (
                    "CE"
                    if r["step"] == "ce"
                    else f"IB {case_label(r['beta'], r.get('penalty', 'tied'))} layer {r['layer']}"
                ),
                "before ms": 1e3 * b["median_s"],
                "after ms": 1e3 * r["median_s"],
                "speed-up": b["median_s"] / r["median_s"],
                "x CE before": b["ratio_to_ce"],
                "x CE after": r["ratio_to_ce"],
            }
        )
    est = {(r["estimator"], r["batch_size"]): r for r in before["estimators"]}
    for r in after["estimators"]:
        b = est.get((r["estimator"], r["batch_size"]))
        if b is not None:
            rows.append(
                {
                    "what": f"{r['estimator']} batch {r['batch_size']} (ms per step)",
                    "before ms": 1e3 / b["steps_per_s"],
                    "after ms": 1e3 / r["steps_per_s"],
                    "speed-up": r["steps_per_s"] / b["steps_per_s"],
                }
            )
    return pd.DataFrame(rows)
