"""The known-truth battery (ibcore.experiments.truth, issue 10 item 5): a tiny version with tolerances."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import ibcore.experiments.truth as truth
from ibcore.core.analytic import linear_gaussian_mi


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    results = tmp_path_factory.mktemp("truth")
    params = truth.battery_params("tiny")
    t0 = time.perf_counter()
    records = truth.run_battery(params, results, device="cpu")
    return params, results, records, time.perf_counter() - t0


def _bias(summary, task, est) -> float:
    return float(summary.loc[(task, est), "bias_pct"])


def test_tiny_battery(tiny_run):
    params, _, records, seconds = tiny_run
    assert len(records) == len(truth.battery_configs(params)) >= 15
    assert seconds < 90  # measured ~25 s on one thread of a loaded 2-core CPU
    s = truth.battery_summary(records)
    for est in ("smile", "ksg", "MINE", "sklearn KSG"):
        assert abs(_bias(s, "gauss d=1 I=1", est)) < 10, est
    # the marginal transform makes estimate_mi blind to x -> x^3; MINE on raw samples is not
    assert abs(_bias(s, "gauss d=1 I=1 cube", "smile")) < 10
    assert abs(_bias(s, "gauss d=1 I=1 cube", "ksg")) < 10
    assert _bias(s, "gauss d=1 I=1 cube", "MINE") < -20
    assert abs(_bias(s, "linear s2=0.1", "AA-MINE")) < 15
    mnist = [r for r in records if r["config"]["family"] == "mnist"][0]["metrics"]
    assert 0 < mnist["truth_low"] < mnist["truth_high"] <= math.log(200) + 1e-9
    for r in records:
        m = r["metrics"]
        assert m["status"] in ("certified", "above log N", "above upper bound")
        assert m["wall_time"] > 0 and math.isfinite(m["value"])


def test_stored_records_are_skipped(tiny_run, monkeypatch):
    params, results, records, _ = tiny_run

    def boom(*args, **kwargs):
        raise AssertionError("a stored record was recomputed")

    monkeypatch.setattr(truth, "run_estimator", boom)
    again = truth.run_battery(params, results, device="cpu")
    assert [r["run_id"] for r in again] == [r["run_id"] for r in records]
    assert len(truth.load_battery(results, params)) == len(records)


def test_summaries(tiny_run):
    _, _, records, _ = tiny_run
    s = truth.battery_summary(records)
    assert {"bias_pct", "bias_sd", "seconds", "stop_step", "seeds"} <= set(s.columns)
    e = truth.estimator_summary(records)
    assert set(e.index) == {"smile", "ksg", "MINE", "AA-MINE", "sklearn KSG"}
    assert (e["mean_abs_bias_pct"] >= 0).all()


def test_task_truths():
    g = truth.make_samples({"family": "gauss", "d": 2, "mi": 1.5, "map": None}, 20000, 0)
    rho = math.sqrt(1 - math.exp(-1.5))
    assert np.corrcoef(g["x"][:, 0], g["y"][:, 0])[0, 1] == pytest.approx(rho, abs=0.01)
    assert g["truth"] == 1.5
    task = {"family": "linear", "d_in": 4, "d_out": 3, "sigma2": 0.1, "map": "cube"}
    s = truth.make_samples(task, 100, 0)
    w = truth.linear_weight(3, 4)
    assert s["truth"] == pytest.approx(linear_gaussian_mi(w, torch.eye(4), 0.1))
    assert np.allclose(np.cbrt(s["y"]), s["clean"] + (np.cbrt(s["y"]) - s["clean"]))  # invertible map
    assert np.allclose(np.cbrt(s["x"]) @ w.numpy().T, s["clean"])


def test_bias_and_params():
    assert truth.bias_pct(0.9, 1.0, 1.0) == pytest.approx(-10)
    assert truth.bias_pct(2.5, 2.0, 3.0) == 0
    assert truth.bias_pct(3.3, 2.0, 3.0) == pytest.approx(10)
    with pytest.raises(ValueError, match="profile"):
        truth.battery_params("huge")
    with pytest.raises(ValueError, match="unknown estimators"):
        truth.battery_params("tiny", estimators=["magic"])
