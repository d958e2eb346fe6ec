"""The held-out information plane (ibcore.experiments.heldout_plane): its runs from the profile,
values flagged outside [0, log 10] and never clipped, the summary over seeds."""

from __future__ import annotations

import math

import pytest

from ibcore.core.config import TrainConfig
from ibcore.core.results import config_id
from ibcore.experiments import heldout_plane
from ibcore.report.claims import profile_params

#: Run ids of the compression study's stored MNIST 1 % runs (seed 0) with these settings: the
#: held-out runs of the IB rows must have the same ids (held-out values change no config).
COMPRESSION_IDS = {"β = 0": "9564371584726ea8", "aamine β = 1e-05": "3b3b0ab752b0b8bf",
                   "pairwise_kl β = 0.1": "a3ce3853b8806f57"}  # fmt: skip


def test_paper_heldout_runs_keep_the_compression_run_ids():
    configs = heldout_plane.heldout_configs(profile_params("paper", "info_plane")["heldout"])
    assert len(configs) == 12 and {c.seed for c in configs} == {0, 1, 2}
    seed0 = {heldout_plane.row_name(c.to_dict()): c for c in configs if c.seed == 0}
    for row, run_id in COMPRESSION_IDS.items():
        assert config_id(seed0[row].to_dict()) == run_id
    ce = seed0["cross-entropy"]
    assert (ce.steps, ce.measure_steps, ce.val_size) == (3000, 1000, 600)
    assert all(c.measure_steps == 0 for c in configs if c.method == "ib")


@pytest.mark.parametrize(
    ("params", "match"),
    [({"val_size": 0, "rows": [{"method": "ce"}]}, "val_size > 0"),
     ({"val_size": 10, "rows": [{"method": "ib", "betaa": 1.0}]}, "unknown key"),
     ({"val_size": 10, "stepz": 3}, "unknown heldout parameter")],
)  # fmt: skip
def test_bad_heldout_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        heldout_plane.heldout_configs(params)


def _ib_record(seed: int, i_y: list, i_y_val: list, lower: list) -> dict:
    config = TrainConfig(dataset="mnist", fraction=0.01, beta=0.0, steps=4, val_size=600, seed=seed)
    layer = {"layer": 1, "step": [2, 4], "I_y": i_y, "I_y_val": i_y_val, "I_y_probe_lower": lower,
             "probe_val_accuracy": [0.5, 0.6], "H_y_val": math.log(10)}  # fmt: skip
    return {"config": config.to_dict(), "run_id": config_id(config.to_dict()), "curves": {"layers": [layer]}}


def _ce_record(seed: int) -> dict:
    config = TrainConfig(dataset="mnist", fraction=0.01, method="ce", steps=6, val_size=600, seed=seed,
                         measure_steps=2)  # fmt: skip
    ce = {"step": [3, 6], "I_y": [[1.0, 2.9], [1.1, 1.2]], "I_y_val": [[0.5, 0.6], [None, 0.7]],
          "I_y_probe_lower": [[0.2, 0.3], [0.4, -0.1]], "probe_val_accuracy": [[0.5, 0.5], [0.6, 0.6]],
          "H_y_val": math.log(10)}  # fmt: skip
    return {"config": config.to_dict(), "run_id": config_id(config.to_dict()), "curves": {"ce": ce}}


def test_heldout_values_are_flagged_not_clipped():
    frame = heldout_plane.heldout_trajectories(
        [_ib_record(0, [2.5, 1.0], [-0.3, 1.0], [0.9, 1.1]), _ce_record(0)]
    )
    ib = frame[frame.method == "ib"].set_index("k")
    assert ib.loc[0, "I_y"] == 2.5 and ib.loc[0, "flag_I_y"] == "above log 10"
    assert ib.loc[0, "I_y_val"] == -0.3 and ib.loc[0, "flag_I_y_val"] == "below 0"
    assert ib.loc[1, "flag_I_y"] == ib.loc[1, "flag_I_y_val"] == ""
    ce = frame[frame.method == "ce"]
    assert len(ce) == 4 and set(ce["layer"]) == {1, 2}
    layer2 = ce[ce.layer == 2].set_index("k")
    assert layer2.loc[0, "flag_I_y"] == "above log 10" and layer2.loc[1, "I_y_probe_lower"] == -0.1
    assert layer2.loc[1, "flag_I_y_probe_lower"] == "below 0"
    assert ce[ce.layer == 1].set_index("k").loc[1, "flag_I_y_val"] == "missing"
    assert list(ce["progress"]) == [0.5, 1.0, 0.5, 1.0]


def test_heldout_summary_over_seeds():
    records = [
        _ib_record(0, [1.0, 2.0], [0.5, 1.5], [0.4, 1.0]),
        _ib_record(1, [1.0, 2.2], [0.5, -0.5], [0.4, 1.2]),
    ]
    table = heldout_plane.heldout_summary(heldout_plane.heldout_trajectories(records))
    (row,) = table.to_dict("records")
    assert row["row"] == "β = 0" and row["seeds"] == 2 and row["points"] == 4
    assert row["I_y_mean"] == pytest.approx(2.1) and row["I_y_std"] == pytest.approx(math.sqrt(0.02))
    assert row["I_y_val_mean"] == pytest.approx(0.5) and row["flagged_I_y_val"] == 1
    assert row["I_y_probe_lower_mean"] == pytest.approx(1.1)
    params = {
        "val_size": 600,
        "fraction": 0.01,
        "steps": 4,
        "seeds": [0, 1, 2],
        "rows": [{"method": "ib", "beta": 0.0}],
    }
    text = heldout_plane.runs_markdown(heldout_plane.heldout_configs(params), records, [])
    assert "2 of 3 runs stored" in text and records[0]["run_id"] in text


def test_early_stopping_verdict_is_computed_per_quantity():
    def row(layer, q, within):
        return {
            "layer": layer,
            "quantity": q,
            "full_mean": 1.0,
            "full_std": 0.1,
            "early_mean": 1.05,
            "early_std": 0.1,
            "difference": 0.05,
            "within_spread": within,
            "early_stop_step": 300,
        }

    result = {
        "config": {"seed": 0, "steps": 10, "measure_steps": 1000},
        "seeds": [0, 1],
        "patience": 3,
        "seconds": {"full": 2.0, "early": 1.0},
        "rows": [row(1, "I_x", False), row(1, "I_y", True), row(2, "I_x", True), row(2, "I_y", True)],
    }
    text = heldout_plane.early_stopping_markdown(result)
    assert "**kept for I(Y;L)**" in text and "**not kept for I(X;L+ε)** (layer 1 moved" in text
    assert "3 of 4" in text
    assert "not been measured" in heldout_plane.early_stopping_markdown(None)
