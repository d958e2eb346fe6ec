"""Issue 14's goals table and the rerun tables of the performance page (ibcore.bench.goals)."""

from __future__ import annotations

from ibcore.bench import goals


def _bench(device: str, tied: float, aamine: float) -> dict:
    rows = [{"step": "ce", "net": "mnist_mlp", "beta": None, "ratio_to_ce": 1.0}]
    rows += [
        {"step": "ib", "net": "mnist_mlp", "beta": 1e-3, "penalty": p, "layer": 1, "ratio_to_ce": r}
        for p, r in (("tied", tied), ("aamine", aamine))
    ]
    return {"machine": {"device": device}, "training_steps": rows}


def test_gpu_goals_are_not_measured_without_a_gpu_record_and_judged_with_one() -> None:
    cpu = _bench("cpu", 1.7, 5.2)
    scratch = {"status": "complete", "total_s": 6621.5, "training": {"runs": 37}}
    frame = goals.goals_frame({"latest": cpu}, cpu, None, scratch, None)
    assert list(frame.verdict) == ["not measured", "not measured", "not measured", "not met"]
    assert "on this record's CPU 5.2x" in frame.measured[1]
    gpu = _bench("cuda:0", 1.5, 3.0)
    frame = goals.goals_frame(
        {"gpu": gpu},
        cpu,
        {"runs_stored": 9, "runs_planned": 9, "wall_s": 500.0, "status": "complete"},
        None,
        None,
    )
    assert list(frame.verdict) == ["met", "not met", "met"]


def test_a_stopped_build_past_the_limit_is_not_met_and_one_under_it_not_shown() -> None:
    over = {"status": "stopped", "total_s": 5208.0, "training": {"runs": 302, "planned": 339}}
    under = {**over, "total_s": 1800.0}
    assert goals.goals_frame({}, None, None, over, None).verdict.iloc[-1] == "not met"
    assert goals.goals_frame({}, None, None, under, None).verdict.iloc[-1] == "not shown"


def test_rerun_answers_pair_the_two_trainings() -> None:
    row = {"penalty": "pairwise_kl", "beta": 0.1, "mean": 0.16, "low": 0.03, "high": 0.30, "verdict": "holds"}
    new = {**row, "beta": 1.0, "mean": -1.87, "low": -2.48, "high": -1.26, "verdict": "does not hold"}
    rc = {"compression": {"old": {"stage1": [row], "stage3": []}, "new": {"stage1": [new], "stage3": []}}}
    frame = goals.rerun_answers_frame(rc)
    assert len(frame) == 1 and not frame.same.iloc[0] and frame.beta_new.iloc[0] == 1.0
    assert frame.new.iloc[0] == "\u22121.9 [\u22122.5, \u22121.3] does not hold"  # typographic minus


def test_the_cpu_goal_is_projected_with_onednn_until_a_build_with_it_is_measured() -> None:
    runs = {
        "pairs": [{"ratio": 0.8}] * 3,
        "summary": {"projected_wall_min": 61.0, "measured_wall_min": 110.4, "projected_over_quiet": 0.55},
    }
    old = {"status": "complete", "total_s": 6621.5, "training": {"runs": 37}}
    frame = goals.goals_frame({}, None, None, old, None, runs)
    assert list(frame.verdict[-2:]) == ["not met", "not met (projected)"]
    assert "projected 61.0 min" in frame.measured.iloc[-1] and "3 paired runs" in frame.measured.iloc[-1]
    new = {"status": "complete", "total_s": 3300.0, "training": {"runs": 339}, "cpu_matmul": ["onednn"]}
    frame = goals.goals_frame({}, None, None, new, None, runs)
    assert frame.verdict.iloc[-1] == "met" and "(float32 products by onednn)" in frame.measured.iloc[-1]


def test_library_summaries_read_the_paired_runs_and_the_two_trainings() -> None:
    from ibcore.bench import libraries

    pair = {"key": "k", "name": "n", "mkl_s": 10.0, "onednn_s": 8.0, "ratio": 0.8}
    runs = {
        "pairs": [
            {**pair, "mkl_test_accuracy": 0.90, "onednn_test_accuracy": 0.88},
            {**pair, "ratio": 0.6, "mkl_test_accuracy": None, "onednn_test_accuracy": None},
        ],
        "summary": {"pooled_ratio": 0.7, "sampled_share": 0.5},
    }
    s = libraries.runs_summary(runs)
    assert (s["kinds"], s["ratio_min"], s["ratio_max"]) == (2, 0.6, 0.8)
    assert abs(s["max_accuracy_move"] - 2.0) < 1e-9
    drift = {"groups": [{"runs": 3, "median_abs_move_pts": 0.1, "max_abs_move_pts": 0.4},
                        {"runs": 5, "median_abs_move_pts": 0.3, "max_abs_move_pts": 13.0}]}  # fmt: skip
    row = {"penalty": "aamine", "beta": 1e-3, "mean": 0.3, "low": 0.15, "high": 0.46, "verdict": "holds"}
    claims = {
        "rows": [{"claim": "a", "same_verdict": True}, {"claim": "b", "same_verdict": False}],
        "compression": {
            "old": {"stage1": [row], "stage3": []},
            "new": {"stage1": [{**row, "low": -0.4, "verdict": "inconclusive"}], "stage3": []},
        },
    }
    r = libraries.rerun_summary(drift, claims)
    assert (r["runs"], r["median_move"], r["max_move"], r["claim_rows"]) == (8, 0.2, 13.0, 2)
    assert [c["claim"] for c in r["changed_claims"]] == ["b"] and r["changed_answers"] == 1
