"""Issue 10: every MI value carries its status; claims use certified values only; Fano; sigma^2 = 0."""

from __future__ import annotations

import math

import pytest
import torch

from ibcore.core.bounds import ABOVE_LOG_N, ABOVE_UPPER, CERTIFIED, mixture_mi_bounds
from ibcore.core.config import TrainConfig
from ibcore.core.estimators import AAMINE
from ibcore.core.results import config_id
from ibcore.core.training import append_bounds
from ibcore.experiments import figure1, infoplane
from ibcore.report import claims

LOG_600 = math.log(600)


# -- Figure 1: made-up panel-a records ------------------------------------------------------------


def fig1_records(aa: dict[float, float], mine: dict[float, float], n: int = 2000, bound: float = 1e3) -> list:
    """Panel-a records: estimator -> {sigma2: value}, one seed, held-out size ``n``."""
    out = []
    for est, values in (("aamine", aa), ("mine", mine)):
        for s2, mi in values.items():
            out.append(
                {
                    "kind": "figure1",
                    "config": {"panel": "a", "estimator": est, "sigma2": s2, "seed": 0},
                    "metrics": {
                        "mi": mi,
                        "holdout_size": n,
                        "gaussian_upper_bound": None if s2 == 0 else bound,
                    },
                    "timings": {"total_s": 1.0},
                }
            )
    return out


def test_figure1_status_of_each_estimate():
    records = fig1_records({0.1: 3.0, 0.01: 9.0, 0.001: 5.0}, {0.1: 1.0, 0.01: 2.0, 0.001: 2.5}, bound=4.0)
    frame = figure1.figure1_frame(records).set_index(["estimator", "sigma2"])
    # log 2000 = 7.6: 9.0 is above log N and above the Gaussian bound 4.0 -> above upper bound
    assert frame.loc[("aamine", 0.01), "status"] == ABOVE_UPPER
    assert frame.loc[("aamine", 0.001), "status"] == ABOVE_UPPER  # 5.0 > 4.0
    assert frame.loc[("aamine", 0.1), "status"] == CERTIFIED
    assert frame.loc[("mine", 0.001), "status"] == CERTIFIED
    # without a bound above it, a value over log N is "above log N"
    frame = figure1.figure1_frame(fig1_records({0.01: 9.0}, {}, bound=1e3))
    assert frame["status"].tolist() == [ABOVE_LOG_N]
    # the exact references (pairwise KL, held-out Gaussian) replace the stored population bound
    key_config = {
        "panel": "a",
        "estimator": "mine",
        "sigma2": 0.1,
        "seed": 0,
        "dataset": "mnist",
        "widths": [784, 8],
        "n_samples": 10,
        "holdout_fraction": 0.2,
    }
    record = {"kind": "figure1", "config": key_config, "metrics": {"mi": 1.0, "holdout_size": 2}}
    refs = {figure1.reference_key(key_config): {"lower": 0.1, "upper": 0.5, "mc": 0.3, "gaussian": 0.9}}
    row = figure1.figure1_frame([record], refs).iloc[0]
    assert row["status"] == ABOVE_UPPER and row["ref_upper"] == 0.5 and row["ref_mc"] == 0.3
    assert figure1.figure1_frame([record]).iloc[0]["status"] == ABOVE_LOG_N  # 1.0 > log 2


def test_figure1_status_rule_without_references():
    record = {
        "kind": "figure1",
        "config": {"panel": "a", "estimator": "mine", "sigma2": 0.1, "seed": 0},
        "metrics": {"mi": 1.0, "holdout_size": 2},
    }
    # no stored Gaussian bound (None is read as infinite): only log 2 = 0.69 applies
    assert figure1.figure1_frame([record]).iloc[0]["status"] == ABOVE_LOG_N
    record["metrics"]["holdout_size"] = 3  # log 3 = 1.10 > 1.0
    assert figure1.figure1_frame([record]).iloc[0]["status"] == CERTIFIED


def test_panel_b_status_uses_the_true_mi():
    records = [
        {
            "kind": "figure1",
            "config": {"panel": "b", "estimator": est, "sigma2": 0.1, "seed": 0},
            "metrics": {"mi": mi, "true_mi": 2.0, "holdout_size": 4000},
        }
        for est, mi in (("mine", 1.9), ("aamine", 2.1))
    ]
    frame = figure1.figure1_frame(records).set_index("estimator")
    assert frame.loc["mine", "status"] == CERTIFIED and frame.loc["aamine", "status"] == ABOVE_UPPER


# -- Figure 1: sigma^2 = 0 and the slope verdict ---------------------------------------------------

GROWING = {0.0: 2e6, 1e-3: 50.0, 1e-2: 4.0, 1e-1: 1.0, 1.0: 0.1}  # 50 > log 2000: not certified
FLAT = {0.0: 2.0, 1e-3: 1.2, 1e-2: 1.0, 1e-1: 0.8, 1.0: 0.05}


def test_sigma2_zero_judges_nothing():
    with_zero = claims.figure1_rows(fig1_records(GROWING, FLAT), "fake")
    without = claims.figure1_rows(
        fig1_records({k: v for k, v in GROWING.items() if k}, {k: v for k, v in FLAT.items() if k}), "fake"
    )
    assert [r["verdict"] for r in with_zero] == [r["verdict"] for r in without] == [claims.HOLDS] * 2
    assert [r["ours"] for r in with_zero] == [r["ours"] for r in without]
    # a huge value at sigma^2 = 0 with a flat trend over sigma^2 > 0 does not pass the claim
    flat_aa = {0.0: 1e7, 1e-3: 1.0, 1e-2: 1.0, 1e-1: 0.9, 1.0: 0.8}
    rows = {r["key"]: r for r in claims.figure1_rows(fig1_records(flat_aa, FLAT), "fake")}
    assert rows["fig1_unbounded"]["verdict"] == claims.FAILS
    table = figure1.figure1_table(fig1_records(GROWING, FLAT))
    summary = figure1.figure1_summary(table)
    assert summary["certified_sigma2"] == [1e-2, 1e-1, 1.0]  # 1e-3 is above log N for AA-MINE
    assert summary["aa_above_log_n"] == [1e-3] and summary["aa_monotone"] is True
    assert summary["aa_slope"] == pytest.approx(figure1.log_slope([1e-2, 1e-1, 1.0], [4.0, 1.0, 0.1]))
    shown = figure1.figure1_display_table(table)
    zero_aa = shown[(shown["estimator"] == "AA-MINE") & (shown["σ²"] == "0")].iloc[0]
    assert zero_aa["estimate [nats]"].startswith("→ ∞")
    assert "judges nothing" in figure1.figure1_verdict(summary)


def test_log_slope():
    s2 = [1e-2, 1e-1, 1.0]
    assert figure1.log_slope(s2, [2 * math.log(1 / s) + 1 for s in s2]) == pytest.approx(2.0)
    assert math.isnan(figure1.log_slope([0.0, 1.0], [5.0, 1.0]))  # sigma^2 = 0 is never used


def test_exact_reference_at_and_above_zero():
    gen = torch.Generator().manual_seed(0)
    held = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    ref0 = figure1.exact_reference(held, 0.0)
    assert ref0["lower"] == ref0["upper"] == ref0["mc"] == pytest.approx(math.log(50))
    assert ref0["gaussian"] is None
    ref = figure1.exact_reference(held, 0.5)
    assert (ref["lower"], ref["upper"]) == pytest.approx(mixture_mi_bounds(held, 0.5))
    assert ref["lower"] - 0.05 <= ref["mc"] <= ref["upper"] + 0.05
    assert ref["upper"] <= math.log(50)
    twice = torch.cat([held[:10], held[:10]])  # repeated rows: I = H(X) < log N, no exact value
    assert figure1.exact_reference(twice, 0.0)["upper"] is None


def test_heldout_indices_are_the_estimators_split(monkeypatch):
    n, seed = 40, 3
    x = torch.randn(n, 4)
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        feats = net(x)
    seen = {}

    def capture(self, u, v, gen):
        seen["u"] = u.clone()
        return 0.0

    monkeypatch.setattr(AAMINE, "evaluate", capture)
    AAMINE(net, steps=1, batch_size=8, holdout_fraction=0.25, seed=seed, device="cpu", hidden=(4,)).estimate(
        x, feats
    )
    assert torch.equal(seen["u"], x[figure1.heldout_indices(n, 0.25, seed)])


# -- information plane ------------------------------------------------------------------------------


def ib_record(beta: float, ix: list[float], iy: list[float], acc: list[float], seed: int = 0) -> dict:
    config = TrainConfig(
        dataset="mnist", fraction=0.01, method="ib", beta=beta, steps=10, seed=seed, sigma=1.0
    )
    layers = [
        {"layer": 1, "step": [5, 10], "I_x": ix, "I_y": iy, "probe_test_accuracy": acc},
        {"layer": 2, "step": [5, 10], "I_x": [0.5, 0.4], "I_y": [1.0, 1.0], "probe_test_accuracy": acc},
    ]
    d = config.to_dict()
    return {
        "kind": "table1",
        "run_id": config_id(d),
        "config": d,
        "metrics": {},
        "curves": {"layers": layers},
        "data_source": {"n_train": 600},
    }


def test_information_plane_statuses_and_flags():
    rec = ib_record(0.0, [3.0, 50.0], [2.5, -0.2], [0.9, 0.5])
    frame = infoplane.trajectories([rec], {"mnist": math.log(10)})
    layer1 = frame[frame.layer == 1].set_index("k")
    assert layer1.loc[0, "x_status"] == CERTIFIED and layer1.loc[1, "x_status"] == ABOVE_LOG_N
    assert (
        layer1.loc[0, "y_status"] == infoplane.Y_ABOVE_HY
        and layer1.loc[1, "y_status"] == infoplane.Y_BELOW_ZERO
    )
    assert layer1.loc[1, "fano"] == pytest.approx(infoplane.fano_lower_bound(0.5, 10, math.log(10)))
    layer2 = frame[frame.layer == 2].set_index("k")
    assert layer2.loc[0, "y_status"] == infoplane.Y_BELOW_FANO  # 1.0 nats at 90 % accuracy
    counts = infoplane.status_counts(frame)
    assert counts[ABOVE_LOG_N] == 1 and counts[CERTIFIED] == 3 and counts["I_y below 0"] == 1
    # stored exact bounds are used: a value above the pairwise-KL bound is invalid
    rec["curves"]["layers"][1]["I_x_lower"] = [0.1, 0.1]
    rec["curves"]["layers"][1]["I_x_upper"] = [0.3, 0.5]
    layer2 = infoplane.trajectories([rec]).query("layer == 2").set_index("k")
    assert layer2.loc[0, "x_status"] == ABOVE_UPPER and layer2.loc[1, "x_status"] == CERTIFIED
    assert layer2.loc[0, "I_x_upper"] == 0.3
    assert math.isnan(infoplane.trajectories([rec]).iloc[0]["fano"])  # no H(Y) given: no Fano bound


def test_append_bounds_pads_a_resumed_curve():
    curve = {"step": [5, 10]}
    append_bounds(curve, 0.1, 0.2)
    assert curve["I_x_lower"] == [None, 0.1] and curve["I_x_upper"] == [None, 0.2]
    curve["step"].append(15)
    append_bounds(curve, 0.3, 0.4)
    assert curve["I_x_upper"] == [None, 0.2, 0.4]


# -- Fano ---------------------------------------------------------------------------------------------


def test_fano_lower_bound():
    h = math.log(10)
    assert infoplane.fano_lower_bound(1.0, 10, h) == pytest.approx(h)
    assert infoplane.fano_lower_bound(0.1, 10, h) == pytest.approx(0.0, abs=1e-12)  # chance level
    assert infoplane.fano_lower_bound(0.1, 10, 2.0) == 0.0  # H(Y) < h_b(Pe) + Pe log 9: floored at 0
    # the beta = 100 case of issue 10: 50.4 % accuracy implies about 0.52 nats
    pe = 0.496
    expected = h + pe * math.log(pe) + (1 - pe) * math.log(1 - pe) - pe * math.log(9)
    assert infoplane.fano_lower_bound(0.504, 10, h) == pytest.approx(expected)
    assert 0.5 < expected < 0.55
    assert math.isnan(infoplane.fano_lower_bound(math.nan, 10, h))
    with pytest.raises(ValueError, match="accuracy"):
        infoplane.fano_lower_bound(1.5, 10, h)
    # it is a lower bound: the MI of a 10-class label read with error Pe uniform over the others
    for acc in (0.3, 0.6, 0.95):
        pe = 1 - acc
        joint_h_y_given_l = -(acc * math.log(acc) + pe * math.log(pe / 9))
        assert infoplane.fano_lower_bound(acc, 10, h) == pytest.approx(h - joint_h_y_given_l)


def test_label_entropy_of_mnist_test_labels():
    from ibcore.core.data import DataError

    try:
        h = infoplane.label_entropy("mnist")
    except DataError:
        pytest.skip("mnist.npz not found")
    assert 2.28 < h <= math.log(10)


# -- claims refuse uncertified values --------------------------------------------------------------


def test_figure1_claims_not_measurable_without_certified_points():
    aa = {0.0: 1e6, 1e-2: 20.0, 1e-1: 10.0, 1.0: 0.5}  # only sigma^2 = 1 certified
    rows = {r["key"]: r for r in claims.figure1_rows(fig1_records(aa, FLAT), "fake")}
    assert rows["fig1_unbounded"]["verdict"] == claims.NOT_MEASURABLE
    assert rows["fig1_monotone"]["verdict"] == claims.NOT_MEASURABLE


def test_information_plane_claims_not_measurable_from_values_above_log_n():
    sweep_params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
        "betas": [0.0, 1.0],
        "seeds": [0],
        "sigma": 1.0,
    }
    small_uncertified = ib_record(0.0, [60.0, 80.0], [2.0, 2.0], [0.9, 0.9])
    large = ib_record(1.0, [1.0, 0.5], [2.0, 2.0], [0.9, 0.9])
    rows = claims.infoplane_rows([small_uncertified, large], "fake", sweep_params, None)
    beta_row = next(r for r in rows if r["key"] == "plane_beta")
    # layer 1 decided only by a value above log 600 = 6.4; layer 2 certified and "not lower"
    # (same values at both betas) -> the certified layer decides: fails
    assert beta_row["verdict"] == claims.FAILS and "(uncertified)" in beta_row["ours"]
    large["curves"]["layers"][1]["I_x"] = [0.3, 0.2]  # now lower in the certified layer
    rows = claims.infoplane_rows([small_uncertified, large], "fake", sweep_params, None)
    assert next(r for r in rows if r["key"] == "plane_beta")["verdict"] == claims.NOT_MEASURABLE
    small_certified = ib_record(0.0, [6.0, 5.0], [2.0, 2.0], [0.9, 0.9])
    rows = claims.infoplane_rows([small_certified, large], "fake", sweep_params, None)
    assert next(r for r in rows if r["key"] == "plane_beta")["verdict"] == claims.HOLDS
    assert (LOG_600 > 6.0) and (LOG_600 < 60.0)


def test_every_layer_verdict():
    assert claims.every_layer_verdict(3, 3, 3) == claims.HOLDS
    assert claims.every_layer_verdict(3, 2, 1) == claims.FAILS
    assert claims.every_layer_verdict(3, 2, 2) == claims.NOT_MEASURABLE
    assert claims.every_layer_verdict(3, 0, 0) == claims.NOT_MEASURABLE


def test_fig3_claim_ignores_an_uncertified_mi_measure():
    def summary(i_x_small: float, n_eff_lower: bool) -> dict:
        return {
            "dataset": "mnist",
            "fraction": 1.0,
            "verdict": {
                "beta_large": 100.0,
                "beta_small": 1e-3,
                "measures": {
                    "I_x": {"large": 0.2, "small": i_x_small, "lower": True},
                    "n_eff_noise": {"large": 1.0, "small": 2.0 if n_eff_lower else 0.5, "lower": n_eff_lower},
                },
            },
        }

    # log 2048 = 7.62
    assert claims.fig3_rows(summary(10.0, True), "f")[0]["verdict"] == claims.NOT_MEASURABLE
    assert claims.fig3_rows(summary(5.0, True), "f")[0]["verdict"] == claims.HOLDS
    row = claims.fig3_rows(summary(10.0, False), "f")[0]
    assert row["verdict"] == claims.FAILS and "above log N" in row["ours"]


# -- Figure 1 configs: the training critic, and the stored paper records still match ------------


def test_training_critic_adds_panel_b_configs_only():
    base = dict(sigma2_grid=[0.0, 0.1], seeds=[0], n_samples=1000, gaussian_samples=1000)
    plain = figure1.figure1_configs(**base)
    more = figure1.figure1_configs(**base, training_critic=True)
    added = [c for c in more if c not in plain]
    assert len(more) == len(plain) + 4 and all(c in more for c in plain)
    assert {(c["panel"], c["estimator"]) for c in added} == {("b", "tied"), ("b", "aamine_penalty")}
    with pytest.raises(ValueError, match="training_critic"):
        figure1.figure1_configs(**base, training_critic="yes")


def test_paper_profile_configs_are_the_stored_records():
    from ibcore.core.results import read_record
    from ibcore.report.claims import profile_params

    params = {
        k: v
        for k, v in profile_params("paper", "fig1_estimators").items()
        if k not in ("profile", "results_dir")
    }
    configs = figure1.figure1_configs(**params)
    assert len(configs) == 180  # 120 of the paper's estimators, 60 of training's critics in panel b
    missing = [
        c
        for c in configs
        if read_record(figure1.resolve_results_dir("results/paper"), figure1.KIND, c) is None
    ]
    assert not missing  # no new paper-size compute: every config is stored
    refs = figure1.load_references(figure1.resolve_results_dir("results/paper"))
    assert all(figure1.reference_key(c) in refs for c in configs if c["panel"] == "a")


def test_tied_estimator_on_a_linear_gaussian_layer():
    config = figure1.figure1_configs(
        sigma2_grid=[0.5],
        seeds=[0],
        panels=["b"],
        estimators=["tied"],
        steps=200,
        batch_size=64,
        gaussian_samples=2000,
        hidden=[8],
    )[0]
    net, x, true_mi = figure1.panel_b_problem(config, torch.device("cpu"))
    with torch.no_grad():
        feats = net(x)
    est = figure1.make_estimator(config, net.prefix(1), torch.device("cpu")).estimate(x, feats)
    assert isinstance(figure1.make_estimator(config, net.prefix(1), torch.device("cpu")), figure1.TiedAAMINE)
    assert est.value == pytest.approx(true_mi, rel=0.15)


def test_exact_bounds_decide_where_estimates_cannot():
    sweep_params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
        "betas": [0.0, 1.0],
        "seeds": [0],
        "sigma": 1.0,
    }
    small = ib_record(0.0, [60.0, 80.0], [2.0, 2.0], [0.9, 0.9])  # estimates above log 600
    large = ib_record(1.0, [1.0, 0.5], [2.0, 2.0], [0.9, 0.9])
    large["curves"]["layers"][1]["I_x"] = [0.3, 0.2]
    for rec, (lo, hi) in ((small, (6.0, 6.3)), (large, (0.1, 0.6))):
        for layer in rec["curves"]["layers"]:
            layer["I_x_lower"], layer["I_x_upper"] = [lo, lo], [hi, hi]
    rows = claims.infoplane_rows([small, large], "fake", sweep_params, None)
    row = next(r for r in rows if r["key"] == "plane_beta")
    assert row["verdict"] == claims.HOLDS and "(by exact bounds)" in row["ours"]
    # overlapping bounds decide nothing; the uncertified estimates neither
    for layer in large["curves"]["layers"]:
        layer["I_x_upper"] = [6.2, 6.2]
    rows = claims.infoplane_rows([small, large], "fake", sweep_params, None)
    assert next(r for r in rows if r["key"] == "plane_beta")["verdict"] == claims.NOT_MEASURABLE


def test_exact_fall_of_a_curve():
    import pandas as pd

    def fall(lo, hi):
        part = pd.DataFrame({"I_x_lower": lo, "I_x_upper": hi})
        return infoplane._exact_columns(part)["exact_fall"]

    assert fall([5.0, 2.0], [5.5, 3.0]) is True  # 5.0 * 0.9 > 3.0
    assert fall([3.0, 3.0], [3.2, 3.2]) is False  # no value exceeds the last by 10 %
    assert fall([3.0, 2.5], [4.0, 3.5]) is None
    assert fall([3.0, 2.5], [math.nan, 3.5]) is None


def test_fig3_claim_decided_by_exact_bounds():
    summary = {
        "dataset": "mnist",
        "fraction": 1.0,
        "verdict": {
            "beta_large": 100.0,
            "beta_small": 1e-3,
            "measures": {"I_x": {"large": 0.2, "small": 10.0, "lower": True}},
        },
    }
    bounds = {
        "a": {"kind": "fig3", "beta": 100.0, "layers": {"1": {"lower": 0.1, "upper": 0.3}}},
        "b": {"kind": "fig3", "beta": 1e-3, "layers": {"1": {"lower": 6.8, "upper": 7.2}}},
    }
    row = claims.fig3_rows(summary, "f", bounds)[0]
    assert row["verdict"] == claims.HOLDS and "exact bounds [0.1, 0.3] vs [6.8, 7.2]" in row["ours"]
    assert "β = 0.001 estimate above its upper bound" in row["ours"]
    assert claims.fig3_rows(summary, "f")[0]["verdict"] == claims.NOT_MEASURABLE  # without bounds
    bounds["b"]["layers"]["1"] = {"lower": 0.2, "upper": 7.2}  # overlapping: estimates only
    assert claims.fig3_rows(summary, "f", bounds)[0]["verdict"] == claims.NOT_MEASURABLE


def test_stored_fig3_model_bounds():
    runs = infoplane.load_model_bounds(figure1.resolve_results_dir("results/paper"))
    exact = claims.fig3_bounds(runs)
    assert set(exact) == {100.0, 0.001}
    for lo, hi in exact.values():
        assert 0 <= lo <= hi <= math.log(2048)


def test_model_bounds_recomputed_from_the_stored_weights():
    from ibcore.core.data import DataError, find_file
    from ibcore.core.results import load_records

    try:
        find_file("mnist")
    except DataError:
        pytest.skip("mnist.npz not found")
    results = figure1.resolve_results_dir("results/paper")
    stored = infoplane.load_model_bounds(results)
    record = next(r for r in load_records(results, "fig3") if r["config"]["beta"] == 100.0)
    fresh = infoplane.model_bounds(record, results)
    assert fresh["layers"]["1"]["lower"] == pytest.approx(stored[record["run_id"]]["layers"]["1"]["lower"])
    assert fresh["layers"]["1"]["upper"] == pytest.approx(stored[record["run_id"]]["layers"]["1"]["upper"])
    # the record's AA-MINE estimate of this run is certified and inside its exact bounds
    assert fresh["layers"]["1"]["lower"] <= record["metrics"]["I_x"][0] <= fresh["layers"]["1"]["upper"]
