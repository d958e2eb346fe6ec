"""A profile's wall time projected from its stored runs' own timings (ibcore.bench.projection)."""

from __future__ import annotations

import json

import pytest

from ibcore import bench
from ibcore.bench import projection
from ibcore.orchestration.jobs import Job


def test_packed_wall_is_longest_first_onto_the_first_free_worker() -> None:
    assert projection.packed_wall([3, 5, 3, 4, 3], 2) == 10  # 5+3+... : [5, 3] / [4, 3, 3]
    assert projection.packed_wall([3, 5, 3, 4, 3], 1) == 18
    assert projection.packed_wall([7, 1, 1], 4) == 7  # never below the longest run
    with pytest.raises(ValueError, match="workers"):
        projection.packed_wall([1.0], 0)


def test_record_seconds_reads_each_kind_of_timing() -> None:
    assert projection.record_seconds({"timings": {"train_seconds": 12.5, "probe_seconds": 1.0}}) == 12.5
    assert projection.record_seconds({"timings": {"estimate_s": 3.0, "total_s": 3.5}}) == 3.5  # figure1
    assert projection.record_seconds({"timings": {"wall": 42.0}}) == 42.0  # the known-truth battery
    assert projection.record_seconds({"timings": {}}) is None
    assert projection.record_seconds({}) is None


def _fake_plan(monkeypatch, records: dict[str, dict | None]) -> None:
    jobs = {
        "table1": [
            Job("table1", "table1", "r", {"k": 1}, key="a", dataset="mnist"),
            Job("table1", "table1", "r", {"k": 2}, key="b", dataset="cifar10"),
        ],
        "beta_sweep": [Job("beta_sweep", "table1", "r", {"k": 1}, key="a", dataset="mnist")],  # read twice
        "fig1_estimators": [Job("fig1_estimators", "figure1", "r", {"k": 3}, key="c", dataset="synthetic")],
    }
    monkeypatch.setattr(projection, "stem_plan", lambda profile, root=None: jobs)
    monkeypatch.setattr(projection, "read_record", lambda d, kind, config: records[f"{kind}{config['k']}"])


def test_projection_sums_each_run_once_and_leaves_out_excluded_data(monkeypatch, tmp_path) -> None:
    env = {"environment": {"device": "cpu"}}
    _fake_plan(
        monkeypatch,
        {
            "table11": {**env, "timings": {"train_seconds": 100.0}},
            "table12": {**env, "timings": {"train_seconds": 900.0}},
            "figure13": {**env, "timings": {"total_s": 60.0}},
        },
    )
    out = projection.project_profile("paper", workers=2, exclude_datasets=["cifar10"])
    assert out["runs"] == 2 and out["run_seconds"] == 160.0 and out["projected_wall_s"] == 100.0
    assert out["devices"] == {"cpu": 2} and out["excluded_datasets"] == ["cifar10"]
    assert [(r["kind"], r["runs"]) for r in out["by_kind"]] == [("table1", 1), ("figure1", 1)]
    everything = projection.project_profile("paper", workers=1)
    assert everything["runs"] == 3 and everything["projected_wall_s"] == 1060.0
    (tmp_path / "projection_paper.json").write_text(json.dumps(out))
    (tmp_path / "other.json").write_text(json.dumps({"kind": "bench"}))
    assert list(bench.read_projections(tmp_path)) == ["projection_paper"]


def test_projection_refuses_a_profile_with_runs_not_stored(monkeypatch) -> None:
    _fake_plan(monkeypatch, {"table11": None, "table12": None, "figure13": {"timings": {"total_s": 1.0}}})
    with pytest.raises(
        ValueError, match=r"2 run\(s\) have no stored record.*ibcore.prefetch --profile paper"
    ):
        projection.project_profile("paper", workers=2)
