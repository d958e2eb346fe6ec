"""Unit tests of the Figure 3 measures, the information-plane extraction, the beta-sweep table
and the claims table (no training; fake records)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ibcore.core.config import TrainConfig
from ibcore.core.results import config_id
from ibcore.experiments import infoplane, representation, sweep
from ibcore.report import claims

# -- representation (Figure 3) ---------------------------------------------------------------


def clustered(k: int = 5, per: int = 40, dim: int = 16, spread: float = 1e-3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 10 * rng.normal(size=(k, dim))
    return np.concatenate([c + spread * rng.normal(size=(per, dim)) for c in centres])


def test_effective_points_counts_tight_clusters():
    rep = clustered(k=5)
    assert representation.effective_points(rep, 0.1) == pytest.approx(5, rel=1e-2)


def test_effective_points_limits():
    rng = np.random.default_rng(1)
    spread = rng.normal(size=(200, 16))
    assert representation.effective_points(spread, 1e-3) == pytest.approx(200, rel=1e-6)
    same = np.ones((50, 4))
    assert representation.effective_points(same, 1.0) == pytest.approx(1.0)
    assert representation.pairwise_information(same, 1.0) == 0.0


def test_relative_measure_tells_clusters_from_spread_data_at_any_scale():
    rng = np.random.default_rng(2)
    spread = rng.normal(size=(200, 16))
    for scale in (1e-2, 1.0, 1e2):
        c = representation.discretisation_measures(scale * clustered(), sigma=1.0)
        s = representation.discretisation_measures(scale * spread, sigma=1.0)
        assert c["n_eff_relative"] < 10 < 150 < s["n_eff_relative"]
    # the noise-scale measure, in contrast, falls when the whole representation shrinks
    small = representation.discretisation_measures(1e-2 * spread, sigma=1.0)
    large = representation.discretisation_measures(1e2 * spread, sigma=1.0)
    assert small["n_eff_noise"] < 2 and large["n_eff_noise"] == pytest.approx(200, rel=1e-3)
    assert large["i_noise"] == pytest.approx(math.log(200), rel=1e-4)


def test_pairwise_information_is_the_gaussian_mixture_bound():
    # two points at distance d: I = -log((1 + exp(-d^2 / 2h^2)) / 2)
    rep = np.array([[0.0, 0.0], [3.0, 4.0]])
    expected = -math.log((1 + math.exp(-25 / 2)) / 2)
    assert representation.pairwise_information(rep, 1.0) == pytest.approx(expected)


def test_representation_input_checks():
    with pytest.raises(ValueError, match="bandwidth"):
        representation.pairwise_information(np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="shape"):
        representation.rms_radius(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        representation.rms_radius(np.array([[0.0], [math.nan]]))


def test_fig3_configs_train_the_first_layer_only():
    configs = representation.fig3_configs([100, 1e-3], steps=5, seeds=[0, 1], sigma=1.0)
    assert [(c.beta, c.seed) for c in configs] == [(100.0, 0), (100.0, 1), (0.001, 0), (0.001, 1)]
    assert all(c.max_layers == 1 and c.method == "ib" and c.sigma == 1.0 for c in configs)
    with pytest.raises(ValueError):
        representation.fig3_configs([-1.0])
    params = {"betas": [100, 1e-3], "steps": 5, "seeds": [0, 1], "sigma": 1.0, "profile": "x"}
    assert representation.configs_from_params(params) == configs


@pytest.mark.parametrize("profile", ["tiny", "default", "paper"])
def test_fig3_profiles_give_first_layer_runs(profile):
    params = claims.profile_params(profile, "fig3_tsne")
    configs = representation.configs_from_params(params)
    assert {c.beta for c in configs} == {100.0, 0.001} and all(c.max_layers == 1 for c in configs)


def test_discretisation_verdict_compares_largest_and_smallest_beta():
    rows = [
        {"beta": 1e-3, "seed": 0, "I_x": 20.0, "n_eff_noise": 900.0, "n_eff_relative": 100.0},
        {"beta": 100.0, "seed": 0, "I_x": 10.0, "n_eff_noise": 500.0, "n_eff_relative": 300.0},
        {"beta": 100.0, "seed": 1, "I_x": 12.0, "n_eff_noise": 700.0, "n_eff_relative": 200.0},
    ]
    table = representation.measures_table(rows)
    assert list(table["beta"]) == [100.0, 1e-3]
    assert table.loc[0, "I_x"] == 11.0 and table.loc[0, "seeds"] == 2
    verdict = representation.discretisation_verdict(table)
    assert verdict["measures"]["I_x"]["lower"] and verdict["measures"]["n_eff_noise"]["lower"]
    assert not verdict["measures"]["n_eff_relative"]["lower"] and not verdict["all_lower"]
    text = representation.verdict_markdown(verdict)
    assert "not lower" in text and "not by clustering" in text
    assert representation.discretisation_verdict(table.iloc[:1]) == {}


# -- fake records -------------------------------------------------------------------------------


def ib_record(beta: float, seed: int = 0, ix_scale: float = 1.0, acc: float = 0.8, steps: int = 10) -> dict:
    config = TrainConfig(
        dataset="mnist", fraction=0.01, method="ib", beta=beta, steps=steps, seed=seed, sigma=1.0
    )
    layers = []
    for i in (1, 2):
        layers.append(
            {
                "layer": i,
                "step": [5, 10],
                "I_x": [ix_scale * 4.0 / i, ix_scale * 3.0 / i],
                "I_y": [1.0, 1.5],
                "probe_test_accuracy": [0.5, acc],
            }
        )
    d = config.to_dict()
    return {
        "kind": "table1",
        "run_id": config_id(d),
        "config": d,
        "metrics": {
            "test_accuracy": acc,
            "I_x": [layer["I_x"][-1] for layer in layers],
            "I_y": [layer["I_y"][-1] for layer in layers],
        },
        "curves": {"layers": layers},
        "timings": {"train_seconds": 1.0},
        "environment": {"device": "cpu"},
        "data_source": {"n_train": 600},
    }


def ce_record(measure: bool = True) -> dict:
    config = TrainConfig(
        dataset="mnist",
        fraction=0.01,
        method="ce",
        steps=30,
        seed=0,
        sigma=1.0,
        measure_steps=5 if measure else 0,
    )
    d = config.to_dict()
    curves = {"step": [10, 20, 30], "test_accuracy": [0.5, 0.7, 0.8], "train_loss": [1, 0.5, 0.2]}
    curves["I_x"] = [[5.0, 4.0], [8.0, 6.0], [6.0, 5.9]] if measure else []
    curves["I_y"] = [[1.0, 1.1], [1.5, 1.6], [1.8, 1.9]] if measure else []
    return {
        "kind": "table1",
        "run_id": config_id(d),
        "config": d,
        "metrics": {"test_accuracy": 0.8},
        "curves": {"ce": curves},
        "timings": {"train_seconds": 1.0},
        "environment": {"device": "cpu"},
        "data_source": {"n_train": 600},
    }


# -- information plane ----------------------------------------------------------------------------


def test_trajectories_from_ib_and_ce_records():
    frame = infoplane.trajectories([ib_record(0.0), ce_record(), ce_record(measure=False)])
    ib = frame[frame.method == "ib"]
    ce = frame[frame.method == "ce"]
    assert len(ib) == 4 and len(ce) == 6  # 2 layers x 2 checkpoints; 3 checkpoints x 2 layers
    row = ib[(ib.layer == 2) & (ib.k == 1)].iloc[0]
    assert (row.step, row.I_x, row.I_y, row.accuracy, row.progress) == (10, 1.5, 1.5, 0.8, 1.0)
    row = ce[(ce.layer == 2) & (ce.k == 1)].iloc[0]
    assert (row.step, row.I_x, row.I_y, row.accuracy) == (20, 6.0, 1.6, 0.7)
    assert infoplane.eval_size([ib_record(0.0)]) == 600


def test_mean_trajectories_and_compression():
    records = [
        ib_record(0.0, seed=0),
        ib_record(0.0, seed=1, ix_scale=3.0),
        ib_record(1.0, ix_scale=0.5),
        ce_record(),
    ]
    mean = infoplane.mean_trajectories(infoplane.trajectories(records))
    first = mean[(mean.method == "ib") & (mean.beta == 0) & (mean.layer == 1) & (mean.k == 0)].iloc[0]
    assert first.I_x == pytest.approx(8.0) and first.seeds == 2
    table = infoplane.compression_table(mean)
    by_beta = infoplane.beta_compression(table)
    assert [c["layer"] for c in by_beta] == [1, 2] and all(c["lower"] for c in by_beta)
    assert by_beta[0]["I_x_small"] == pytest.approx(6.0) and by_beta[0]["I_x_large"] == pytest.approx(1.5)
    ce = {c["layer"]: c for c in infoplane.ce_compression(table)}
    assert ce[1]["drop"] == pytest.approx(0.25) and ce[1]["compressed"]
    assert ce[2]["drop"] == pytest.approx(0.1 / 6.0) and not ce[2]["compressed"]


# -- beta sweep ---------------------------------------------------------------------------------


def sweep_records() -> list[dict]:
    return [
        ib_record(0.0, seed=0, acc=0.80),
        ib_record(0.0, seed=1, acc=0.82),
        ib_record(1e-3, seed=0, acc=0.85),
        ib_record(1e-3, seed=1, acc=0.87),
        ib_record(1.0, seed=0, acc=0.81),
        ib_record(1.0, seed=1, acc=0.83),
        ib_record(100.0, seed=0, acc=0.40, ix_scale=0.1),
        ib_record(100.0, seed=1, acc=0.42, ix_scale=0.1),
    ]


def test_sweep_table_and_comparison():
    records = sweep_records() + [ce_record()]
    table = sweep.sweep_table(records)
    assert list(table["beta"]) == [0.0, 1e-3, 1.0, 100.0]
    assert table.loc[1, "acc_mean"] == pytest.approx(86.0) and table.loc[1, "n"] == 2
    assert table.loc[0, "I_x_2_mean"] == pytest.approx(1.5) and table.loc[
        0, "I_x_last_mean"
    ] == pytest.approx(1.5)
    found = {c["beta"]: c for c in sweep.compare_to_zero(records)}
    # paired by seed, every beta shifts both seeds alike (1e-3: +5, 1: +1, 100: -40 points): a
    # constant difference has a zero-width interval, so even +1 point holds
    assert {b: c["verdict"] for b, c in found.items()} == {
        1e-3: "holds",
        1.0: "holds",
        100.0: "does not hold",
    }
    assert found[1e-3]["difference"] == pytest.approx(5.0) and found[1e-3]["n"] == 2
    text = sweep.verdict_markdown(records)
    assert (
        "best mean at $\\beta = 10^{-3}$" in text
        and "raises test accuracy (the 95 % interval of the paired difference lies above 0) at "
        "$\\beta \\in \\{10^{-3}, 1\\}$"
        in text
        and "lowers test accuracy (the interval lies below 0) at $\\beta \\in \\{10^{2}\\}$" in text
        and "not corrected for being 3 comparisons" in text
    )


def test_sweep_comparison_is_paired_and_three_state():
    def rec(beta: float, seed: int, acc: float) -> dict:
        return ib_record(beta, seed=seed, acc=acc)

    # seed spread of 10 points, paired gain of 0.5 +- 0.1: holds only because it is paired
    records = [rec(0.0, s, 0.70 + 0.10 * s) for s in range(3)]
    records += [
        rec(1e-3, s, 0.70 + 0.10 * s + g) for s, g in zip(range(3), (0.004, 0.005, 0.006), strict=True)
    ]
    records += [rec(1.0, s, 0.70 + 0.10 * s + g) for s, g in zip(range(3), (0.01, -0.01, 0.001), strict=True)]
    records += [rec(5.0, 0, 0.9)]  # one seed only: no interval
    found = {c["beta"]: c for c in sweep.compare_to_zero(records)}
    assert found[1e-3]["verdict"] == "holds" and found[1e-3]["ci_low"] > 0
    assert found[1.0]["verdict"] == "inconclusive" and found[1.0]["ci_low"] < 0 < found[1.0]["ci_high"]
    assert found[5.0]["verdict"] == "inconclusive" and found[5.0]["n"] == 1
    with pytest.raises(ValueError, match="twice"):
        sweep.compare_to_zero(records + [rec(1.0, 0, 0.5)])


def test_sweep_select_and_missing():
    configs = [
        TrainConfig(dataset="mnist", fraction=0.01, method="ib", beta=b, steps=10, sigma=1.0)
        for b in (0.0, 5.0)
    ]
    records = sweep_records()
    assert [r["config"]["beta"] for r in sweep.select_records(records, configs)] == [0.0]
    assert [c.beta for c in sweep.missing_configs(records, configs)] == [5.0]


# -- claims ---------------------------------------------------------------------------------------


def test_claims_rows_and_table():
    sweep_params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
        "betas": [0.0, 1e-3, 1.0, 100.0],
        "seeds": [0, 1],
        "sigma": 1.0,
    }
    records = sweep_records()
    rows = claims.sweep_rows(records, "fake", sweep_params)
    assert rows[0]["verdict"] == claims.HOLDS and "best β = 0.001, +5.00 points" in rows[0]["ours"]
    assert "2 above 0, 1 below 0, 0 inconclusive" in rows[0]["note"]
    plane = claims.infoplane_rows(records + [ce_record()], "fake", sweep_params, None)
    assert {r["key"]: r["verdict"] for r in plane} == {
        "plane_beta": claims.HOLDS,
        "plane_ce": claims.NOT_MEASURED,
    }
    fig3 = claims.fig3_rows(
        {
            "verdict": {
                "beta_large": 100.0,
                "beta_small": 1e-3,
                "all_lower": False,
                "measures": {
                    "I_x": {"large": 1.0, "small": 2.0, "lower": True},
                    "n_eff_relative": {"large": 3.0, "small": 2.0, "lower": False},
                },
            }
        },
        "fake",
    )
    assert fig3[0]["verdict"] == claims.FAILS and "N_eff" in fig3[0]["note"]
    empty = claims.table1_rows([], "fake") + claims.figure1_rows([], "fake") + claims.fig3_rows(None, "fake")
    assert {r["verdict"] for r in empty} == {claims.NOT_MEASURED}
    table = claims.claims_table(rows + plane + fig3 + empty)
    keys = [k for k, _, _ in claims.CLAIMS]
    assert list(dict.fromkeys(table["key"])) == [k for k in keys if k in set(table["key"])]
    text = claims.markdown_table(table)
    assert "[β sweep](beta_sweep.ipynb)" in text and "**holds**" in text
    assert text.count("\n") == len(table) + 1
    counts = claims.verdict_counts(table)
    assert sum(counts.values()) == len(table)


def test_table1_rows_use_only_the_table1_configs():
    params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
        "rows": ["iy", "ib"],
        "seeds": [0, 1],
        "beta": 1e-3,
        "sigma": 1.0,
    }
    rows = claims.table1_rows(sweep_records(), "fake", params)
    # beta = 100 and 1 are sweep runs, not Table 1's "ib" row: only 0.001 vs 0 counts
    (iy,) = [r for r in rows if r["key"] == "ib_gt_iy"]
    assert iy["verdict"] == claims.HOLDS and "+5.00 points" in iy["ours"] and "2 paired seeds" in iy["ours"]
    (ce,) = [r for r in rows if r["key"] == "ib_gt_ce"]
    assert ce["verdict"] == claims.NOT_MEASURED


def test_sweep_claim_is_inconclusive_unless_an_interval_decides():
    sweep_params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
        "betas": [0.0, 1e-3, 100.0],
        "seeds": [0, 1],
        "sigma": 1.0,
    }
    records = [ib_record(0.0, seed=0, acc=0.80), ib_record(0.0, seed=1, acc=0.82)]
    records += [ib_record(1e-3, seed=0, acc=0.81), ib_record(1e-3, seed=1, acc=0.815)]  # +1, -0.5
    records += [ib_record(100.0, seed=0, acc=0.40), ib_record(100.0, seed=1, acc=0.42)]
    (row,) = claims.sweep_rows(records, "fake", sweep_params)
    assert row["verdict"] == claims.INCONCLUSIVE and "0 above 0, 1 below 0, 1 inconclusive" in row["note"]
    records = records[:2] + [ib_record(1e-3, seed=s, acc=0.70 + 0.02 * s) for s in (0, 1)] + records[4:]
    (row,) = claims.sweep_rows(records, "fake", sweep_params)
    assert row["verdict"] == claims.FAILS


def test_claims_for_an_empty_folder_is_all_not_measured(tmp_path):
    rows = claims.claims_for(tmp_path, "tiny")
    assert rows and {r["verdict"] for r in rows} == {claims.NOT_MEASURED}
    assert {r["key"] for r in rows} == {k for k, _, _ in claims.CLAIMS}


def test_profile_params_reads_the_repository_profiles():
    assert claims.profile_params("tiny", "beta_sweep")["betas"]
    assert claims.profile_params("no-such-profile", "beta_sweep") == {}
