"""The CPU's float32 matmul libraries compared (:mod:`ibcore.core.cpu_matmul`): step costs from
two benchmark records, and paper-profile runs trained with each (``benchmarks/cpu_matmul_runs.py``)."""

from __future__ import annotations

import os
from typing import Any

from ibcore.bench.frames import read_kind, speedups

#: The record kind ``benchmarks/cpu_matmul_runs.py`` writes.
RUNS_KIND = "bench_cpu_matmul_runs"


def read_library_runs(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The newest record of ``benchmarks/cpu_matmul_runs.py`` in ``folder``, or None."""
    records = read_kind(folder, RUNS_KIND)
    return list(records.values())[-1] if records else None


def newest_by_library(bench_records: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The newest CPU benchmark record that names its matmul library, per library (records from
    before :mod:`ibcore.core.cpu_matmul` name none and are left out)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, record in bench_records.items():  # oldest first
        library = record["machine"].get("cpu_matmul")
        if library and record["machine"]["device"] == "cpu":
            out[library] = (name, record)
    return out


def step_library_frame(mkl: dict[str, Any], onednn: dict[str, Any]):
    """Per training iteration and estimator: milliseconds under MKL and oneDNN, and the speed-up
    (> 1: oneDNN is faster)."""
    frame = speedups(mkl, onednn).rename(columns={"before ms": "MKL ms", "after ms": "oneDNN ms"})
    return frame[["what", "MKL ms", "oneDNN ms", "speed-up"]]


def runs_library_frame(runs: dict[str, Any]):
    """One row per run trained with both libraries: its kind, seconds under each, the ratio and the
    two test accuracies (percent)."""
    import pandas as pd

    rows = [
        {
            "kind": p["key"],
            "run": p["name"],
            "mkl_s": p["mkl_s"],
            "onednn_s": p["onednn_s"],
            "ratio": p["ratio"],
            "mkl_acc": None if p.get("mkl_test_accuracy") is None else 100 * p["mkl_test_accuracy"],
            "onednn_acc": None if p.get("onednn_test_accuracy") is None else 100 * p["onednn_test_accuracy"],
        }
        for p in runs["pairs"]
    ]
    return pd.DataFrame(rows, columns=["kind", "run", "mkl_s", "onednn_s", "ratio", "mkl_acc", "onednn_acc"])


def runs_summary(runs: dict[str, Any]) -> dict[str, float]:
    """The paired runs in numbers: pooled and per-kind range of the run-time ratio (oneDNN / MKL),
    the share of the profile's run time sampled, and the largest test-accuracy difference between
    a run's two trainings (points)."""
    frame = runs_library_frame(runs)
    moves = (frame.onednn_acc - frame.mkl_acc).abs().dropna()
    return {
        "kinds": len(frame),
        "pooled_ratio": runs["summary"]["pooled_ratio"],
        "sampled_share": runs["summary"]["sampled_share"],
        "ratio_min": float(frame.ratio.min()),
        "ratio_max": float(frame.ratio.max()),
        "max_accuracy_move": float(moves.max()) if len(moves) else float("nan"),
    }


def rerun_summary(drift: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """Two trainings of the same runs compared (``benchmarks/rerun_drift.py`` and
    ``benchmarks/rerun_claims.py`` records): runs compared, the median over kinds of the median and
    the largest test-accuracy move (points), and the claim rows and compression answers whose
    verdict changed."""
    import pandas as pd

    from ibcore.bench.goals import rerun_answers_frame

    groups = pd.DataFrame(drift["groups"])
    answers = rerun_answers_frame(claims)
    return {
        "runs": int(groups.runs.sum()),
        "median_move": float(groups.median_abs_move_pts.median()),
        "max_move": float(groups.max_abs_move_pts.max()),
        "claim_rows": len(claims["rows"]),
        "changed_claims": [r for r in claims["rows"] if not r["same_verdict"]],
        "answers": answers,
        "changed_answers": int((~answers["same"]).sum()),
    }
