"""Tables of the performance page built from the stored benchmark records (issue 14): the
projection of a profile, the compression study's answers from two trainings, and issue 14's
goals with the record that measures each."""

from __future__ import annotations

from typing import Any

from ibcore.core.formatting import sig

#: issue 14's limits: IB step / CE step on a GPU, the paper profile on one H200 (s), the paper
#: profile without CIFAR-10 on 2 CPU cores (s)
GPU_STEP_RATIO = 2.0
GPU_PROFILE_S = 600.0
CPU_PROFILE_S = 3600.0


def projection_frame(projections: dict[str, dict[str, Any]]):
    """One row per projection record and kind of run, then its total (:mod:`ibcore.bench.projection`)."""
    import pandas as pd

    rows = []
    for name, pr in projections.items():
        for r in pr["by_kind"]:
            rows.append(
                {
                    "projection": name,
                    "kind": r["kind"],
                    "dataset": r["dataset"],
                    "runs": r["runs"],
                    "minutes": r["seconds"] / 60,
                }
            )
        rows.append(
            {
                "projection": name,
                "kind": f"**all ({pr['workers']} workers: projected wall {sig(pr['projected_wall_s'] / 60)} "
                "min)**",
                "dataset": "without " + ", ".join(pr["excluded_datasets"])
                if pr["excluded_datasets"]
                else "all",
                "runs": pr["runs"],
                "minutes": pr["run_seconds"] / 60,
            }
        )
    return pd.DataFrame(rows, columns=["projection", "kind", "dataset", "runs", "minutes"])


def _answer(row: dict[str, Any]) -> str:
    if row.get("mean") is None:
        return row["verdict"]
    return f"{sig(row['mean'], 2)} [{sig(row['low'], 2)}, {sig(row['high'], 2)}] {row['verdict']}"


def rerun_answers_frame(rerun_claims: dict[str, Any]):
    """The compression study's answers (``benchmarks/rerun_claims.py``) from the stored records and
    from the runs trained again, one row per cell and penalty."""
    import pandas as pd

    rows = []
    for stage, cell in (("stage1", "MNIST 1 %"), ("stage3", "MNIST 100 %")):
        pairs = zip(
            rerun_claims["compression"]["old"][stage], rerun_claims["compression"]["new"][stage], strict=False
        )
        for old, new in pairs:
            rows.append(
                {
                    "cell": cell, "penalty": old["penalty"], "beta_old": old["beta"], "beta_new": new["beta"],
                    "old": _answer(old), "new": _answer(new), "same": old["verdict"] == new["verdict"],
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["cell", "penalty", "beta_old", "beta_new", "old", "new", "same"])


def answers_columns(old: str, new: str) -> dict[str, str]:
    """Headings of :func:`rerun_answers_frame`'s columns, the two trainings named ``old`` and ``new``."""
    return {
        "cell": "cell", "penalty": "penalty", "beta_old": f"β chosen, {old}", "old": old,
        "beta_new": f"β chosen, {new}", "new": new, "same": "same verdict",
    }  # fmt: skip


def _step_ratios(records: list[dict[str, Any]], penalty: str) -> list[float]:
    """IB / CE ratios of the MNIST MLP's full-IB rows (beta > 0) with ``penalty`` in ``records``."""
    return [
        r["ratio_to_ce"]
        for rec in records
        for r in rec["training_steps"]
        if r["step"] == "ib" and r["net"] == "mnist_mlp" and (r["beta"] or 0) > 0
        and r.get("penalty", "tied") == penalty
    ]  # fmt: skip


def goals_frame(
    bench_records: dict[str, dict[str, Any]],
    headline: dict[str, Any] | None,
    gpu_paper: dict[str, Any] | None,
    scratch: dict[str, Any] | None,
    grouped: dict[str, Any] | None,
    library_runs: dict[str, Any] | None = None,
):
    """Issue 14's goals, each with what the stored records measured and a verdict: "met", "not
    met", or "not measured" while no record of the goal's device is stored. ``library_runs``
    (``benchmarks/cpu_matmul_runs.py``) adds the CPU goal projected with oneDNN's products, its
    verdict marked "(projected)", unless ``scratch`` measured a build with them."""
    import pandas as pd

    gpu_records = [r for r in bench_records.values() if r["machine"]["device"].startswith("cuda")]
    rows = []
    for label, penalty in (("tied critic", "tied"), ("the paper's AA-MINE penalty", "aamine")):
        gpu = _step_ratios(gpu_records, penalty)
        cpu = _step_ratios([headline], penalty) if headline is not None else []
        rows.append(
            {
                "goal": f"an IB step of the MNIST MLP ({label}) at most {GPU_STEP_RATIO:g}x a CE step "
                "on a GPU",
                "measured": (f"worst layer {sig(max(gpu), 2)}x" if gpu else "no GPU record")
                + (f"; on this record's CPU {sig(max(cpu), 2)}x" if cpu else ""),
                "verdict": ("met" if max(gpu) <= GPU_STEP_RATIO else "not met") if gpu else "not measured",
            }
        )
    rows.append(
        {
            "goal": f"the whole paper profile from scratch in at most {GPU_PROFILE_S / 60:g} min on one H200",
            "measured": "no GPU record (`gpu_paper_timings.json`)"
            if gpu_paper is None
            else f"{gpu_paper['runs_stored']} of {gpu_paper['runs_planned']} runs in "
            f"{sig(gpu_paper['wall_s'] / 60)} min",
            "verdict": "not measured"
            if gpu_paper is None
            else (
                "met"
                if gpu_paper["status"] == "complete" and gpu_paper["wall_s"] <= GPU_PROFILE_S
                else "not met"
            ),
        }
    )
    if scratch is not None:
        done = scratch["status"] == "complete"
        stopped = (
            ""
            if done
            else f", stopped with {scratch['training']['runs']} of {scratch['training'].get('planned')} runs"
        )
        over = scratch["total_s"] > CPU_PROFILE_S
        rows.append(
            {
                "goal": f"the paper profile without CIFAR-10 in at most {CPU_PROFILE_S / 60:g} min on 2 "
                "CPU cores",
                "measured": f"{sig(scratch['total_s'] / 60)} min{stopped}"
                + (
                    f" (float32 products by {', '.join(scratch['cpu_matmul'])})"
                    if scratch.get("cpu_matmul")
                    else ""
                ),
                "verdict": "not met" if over else ("met" if done else "not shown"),
            }
        )
    summary = (library_runs or {}).get("summary") or {}
    measured_with_onednn = scratch is not None and "onednn" in (scratch.get("cpu_matmul") or [])
    if summary.get("projected_wall_min") is not None and not measured_with_onednn:
        projected = summary["projected_wall_min"]
        rows.append(
            {
                "goal": f"the paper profile without CIFAR-10 in at most {CPU_PROFILE_S / 60:g} min on 2 "
                "CPU cores, with oneDNN's float32 products",
                "measured": f"projected {sig(projected)} min: the {sig(summary['measured_wall_min'])} "
                f"min build scaled by the run time ratio {sig(summary['projected_over_quiet'], 2)} "
                f"measured on {len(library_runs['pairs'])} paired runs",
                "verdict": ("met" if projected <= CPU_PROFILE_S / 60 else "not met") + " (projected)",
            }
        )
    if grouped is not None:
        rows.append(
            {
                "goal": "grouped runs: runs per hour against one at a time, on this CPU",
                "measured": f"{sig(grouped['speedup'], 2)}x ({sig(grouped['grouped']['runs_per_hour'])} "
                f"against {sig(grouped['single']['runs_per_hour'])} runs/h)",
                "verdict": "measured",
            }
        )
    return pd.DataFrame(rows, columns=["goal", "measured", "verdict"])
