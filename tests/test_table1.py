"""ibcore.experiments.table1: runs stored once and skipped after, resumption of an interrupted table,
the summary, and the configs a notebook's parameters ask for."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest
import torch

import ibcore.core.results
import ibcore.core.training
import ibcore.experiments.table1
from ibcore.core.config import TrainConfig
from ibcore.experiments import table1
from ibcore.experiments.comparisons import budget_reason, comparisons, comparisons_markdown
from ibcore.experiments.table1 import PAPER, cell_configs, configs_from_params, run_configs, summarise


class Interrupted(Exception):
    """Stands for a kill of the process."""


def no_training(*args, **kwargs):
    raise AssertionError("a stored run was trained again")


def files_under(root: Path) -> list[Path]:
    return sorted(Path(d) / f for d, _, names in os.walk(root) for f in names)


def assert_clean(root: Path) -> list[dict]:
    """No temporary file anywhere, every record parses and is complete; returns the records."""
    files = files_under(root)
    assert not [f for f in files if f.name.endswith(".tmp")], files
    records = []
    for f in files:
        if f.suffix == ".json":
            record = json.loads(f.read_text())
            assert record["status"] == "complete" and f.stem == record["run_id"]
            records.append(record)
    return records


def comparable(record: dict) -> dict:
    """A record without what legitimately differs between two equal runs (wall-clock time)."""
    record = copy.deepcopy(record)
    record.pop("timings")
    for layer in record["curves"].get("layers", []):
        layer.pop("seconds", None)
    return record


# -- running and skipping ------------------------------------------------------------------


def test_two_configs_two_records_then_skipped(tiny_config, cached_loads, monkeypatch, tmp_path):
    configs = [tiny_config(beta=1e-3), tiny_config(method="ce", beta=0.0)]
    records = run_configs(configs, tmp_path, device="cpu", progress=False)
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]
    stored = assert_clean(tmp_path)
    assert len(stored) == 2 and len(files_under(tmp_path)) == 2  # checkpoints removed
    for r in records:
        assert r["kind"] == "table1"
        assert {"metrics", "curves", "timings", "environment", "data_source"} <= set(r)
        assert 0 <= r["metrics"]["test_accuracy"] <= 1
        assert r["environment"]["device"] == "cpu"
        assert r["data_source"]["n_train"] == 600 and r["data_source"]["n_test"] == 10000
    assert len(records[0]["metrics"]["I_x"]) == 3 and "layers" in records[0]["curves"]
    assert "ce" in records[1]["curves"]
    # again: read back, nothing trained, no data loaded
    monkeypatch.setattr(ibcore.experiments.table1, "train", no_training)
    monkeypatch.setattr(ibcore.experiments.table1, "load_dataset", no_training)
    assert run_configs(configs, tmp_path, device="cpu", progress=False) == records
    # a changed parameter is a new run
    with pytest.raises(AssertionError, match="trained again"):
        run_configs([tiny_config(beta=2e-3)], tmp_path, device="cpu", progress=False)


def test_interrupted_table_resumes(tiny_config, cached_loads, monkeypatch, tmp_path):
    """The first run finishes, the second is killed in its second layer; the rerun trains only
    the second, from its checkpoint, to the result of an uninterrupted run."""
    first, second = tiny_config(method="ce", beta=0.0), tiny_config(beta=1e-3)
    real_save = ibcore.core.training.Checkpointer.save
    saves = []

    def save(self, state):
        real_save(self, state)
        saves.append(self.path)
        if len(saves) == 2 + 4:  # CE: 2 checkpoints; IB: 3 a layer -> mid-layer 2 of the second
            raise Interrupted

    with monkeypatch.context() as m:
        m.setattr(ibcore.core.training.Checkpointer, "save", save)
        with pytest.raises(Interrupted):
            run_configs([first, second], tmp_path, device="cpu", progress=False)
    (done,) = assert_clean(tmp_path)
    assert done["config"] == first.to_dict()
    ckpts = [f for f in files_under(tmp_path) if f.name.endswith(".ckpt.pt")]
    assert ckpts == [saves[-1]]
    assert torch.load(ckpts[0], weights_only=False)["layer"] == 2

    trained = []
    real_train = ibcore.experiments.table1.train

    def spy(config, *args, **kwargs):
        trained.append(config)
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(ibcore.experiments.table1, "train", spy)
    records = run_configs([first, second], tmp_path, device="cpu", progress=False)
    assert trained == [second]
    assert records[0] == done
    assert len(assert_clean(tmp_path)) == 2
    assert not [f for f in files_under(tmp_path) if f.name.endswith(".ckpt.pt")]

    (whole,) = run_configs([second], tmp_path / "uninterrupted", device="cpu", progress=False)
    assert comparable(records[1]) == comparable(whole)


def test_failed_record_write_leaves_no_file(tiny_config, cached_loads, monkeypatch, tmp_path):
    def boom(fd):
        raise Interrupted

    monkeypatch.setattr(ibcore.core.results.os, "fsync", boom)
    with pytest.raises(Interrupted):
        run_configs([tiny_config(method="ce", beta=0.0)], tmp_path, device="cpu", progress=False)
    assert assert_clean(tmp_path) == []


def test_saved_model_loads_back(tiny_config, cached_loads, tmp_path, mnist_small):
    config = tiny_config(method="ce", beta=0.0)
    (record,) = run_configs([config], tmp_path, device="cpu", progress=False, save_models=True)
    model = ibcore.experiments.table1.load_model(config, tmp_path)
    with torch.no_grad():
        acc = float((model(mnist_small.x_test).argmax(1) == mnist_small.y_test).float().mean())
    assert acc == pytest.approx(record["metrics"]["test_accuracy"], abs=1e-6)
    with pytest.raises(FileNotFoundError, match="save_models"):
        ibcore.experiments.table1.load_model(tiny_config(method="ce", beta=0.0, seed=5), tmp_path)


# -- summary -------------------------------------------------------------------------------


def fake_record(
    dataset: str, fraction: float, row: str, seed: int, acc: float, train: float | None = None
) -> dict:
    method = "ce" if row == "ce" else "ib"
    beta = 1e-3 if row == "ib" else 0.0
    config = TrainConfig(dataset=dataset, fraction=fraction, method=method, beta=beta, seed=seed)
    metrics = {"test_accuracy": acc} if train is None else {"test_accuracy": acc, "train_accuracy": train}
    return {
        "kind": "table1",
        "config": config.to_dict(),
        "metrics": metrics,
        "timings": {"train_seconds": 10.0 + seed},
        "environment": {"device": "cpu"},
    }


def test_summarise_mean_std_n_and_paper():
    records = [
        fake_record("mnist", 0.01, "ib", 0, 0.90),
        fake_record("mnist", 0.01, "ce", 0, 0.80),
        fake_record("mnist", 0.01, "ce", 1, 0.82),
        fake_record("mnist", 0.01, "ce", 2, 0.84),
        fake_record("mnist", 0.01, "iy", 0, 0.85),
        fake_record("mnist", 0.01, "iy", 1, 0.87),
        fake_record("mnist", 0.1, "ce", 0, 0.95),
    ]
    s = summarise(records)
    assert list(zip(s.fraction, s.row, strict=True)) == [
        (0.01, "ce"),
        (0.01, "iy"),
        (0.01, "ib"),
        (0.1, "ce"),
    ]
    ce = s.iloc[0]
    assert ce["mean"] == pytest.approx(82.0) and ce["std"] == pytest.approx(2.0) and ce["n"] == 3
    assert ce["paper"] == PAPER[("mnist", 0.01)]["ce"] == 85.78
    assert ce["seconds"] == pytest.approx(11.0) and ce["device"] == "cpu"
    iy = s.iloc[1]
    assert iy["mean"] == pytest.approx(86.0) and iy["std"] == pytest.approx(math.sqrt(2)) and iy["n"] == 2
    assert iy["paper"] == 85.12
    ib = s.iloc[2]
    assert ib["n"] == 1 and math.isnan(ib["std"]) and ib["beta"] == 1e-3 and ib["paper"] == 86.57
    assert s.iloc[3]["paper"] is None or math.isnan(s.iloc[3]["paper"])  # no paper value there
    assert set(s.method) >= {"Cross-entropy", "L = I(Y;L_i)"}
    assert math.isnan(ce["train_mean"])  # these records report no train accuracy


# -- paired comparisons (issue 9) -------------------------------------------------------------


def paired_cell(gains: dict[str, list[float]], train: dict[str, float] | None = None) -> list[dict]:
    """Records of one MNIST 1 % cell: the "ce" row at 80 + 5 * seed % (a large seed spread), the
    other rows at that plus ``gains[row][seed]`` points."""
    out = []
    for row in ("ce", *gains):
        for seed in range(len(next(iter(gains.values())))):
            acc = 80 + 5 * seed + (gains[row][seed] if row in gains else 0.0)
            out.append(fake_record("mnist", 0.01, row, seed, acc / 100, (train or {}).get(row)))
    return out


def test_comparisons_are_paired_by_seed():
    # ib beats iy by 0.5 +- 0.1 points on every seed: invisible against the 5-point seed spread
    # unpaired, a clear gain paired
    records = paired_cell({"iy": [1.0, 1.0, 1.0, 1.0], "ib": [1.4, 1.6, 1.5, 1.5]})
    found = {c["claim"]: c for c in comparisons(records)}
    assert set(found) == {"ib > iy", "ib > ce", "iy > ce"}
    ib_iy = found["ib > iy"]
    assert ib_iy["difference"] == pytest.approx(0.5) and ib_iy["n"] == 4 and ib_iy["seeds"] == [0, 1, 2, 3]
    assert ib_iy["ci_low"] > 0 and ib_iy["verdict"] == "holds" and ib_iy["reason"] is None
    assert ib_iy["paper"] is True
    assert found["iy > ce"]["paper"] is False  # the paper's I(Y;L) row is below CE at 1 %
    text = comparisons_markdown([ib_iy])
    assert "full IB minus $I(Y;L_i)$ only = +0.50 points, 95 % CI [+" in text and "**holds**" in text


def test_comparison_verdicts_follow_the_interval():
    records = paired_cell({"iy": [0.0, 0.0, 0.0], "ib": [-0.5, -0.6, -0.4]})
    assert {c["claim"]: c["verdict"] for c in comparisons(records)}["ib > iy"] == "does not hold"
    records = paired_cell({"iy": [0.0, 0.0, 0.0], "ib": [1.0, -1.0, 0.1]})
    c = {c["claim"]: c for c in comparisons(records)}["ib > iy"]
    assert c["verdict"] == "inconclusive" and c["ci_low"] < 0 < c["ci_high"] and "contains 0" in c["reason"]
    # one seed: no interval
    c = {c["claim"]: c for c in comparisons(paired_cell({"ib": [3.0]}))}["ib > ce"]
    assert c["verdict"] == "inconclusive" and c["n"] == 1 and "at least 2" in c["reason"]


def test_comparisons_skip_diverged_runs_and_reject_ambiguous_seeds():
    records = paired_cell({"ib": [1.0, 1.1, 0.9]})
    records[-1]["status"] = "diverged"  # ib seed 2
    (c,) = comparisons(records)
    assert c["n"] == 2 and c["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="twice"):
        comparisons(records + [fake_record("mnist", 0.01, "ce", 0, 0.5)])


def test_a_cell_that_measures_a_training_budget_is_inconclusive():
    # CIFAR-10 as stored: IB rows far below cross-entropy in train accuracy; a clear paired loss
    gains = {"iy": [-5.0, -5.2, -4.8], "ib": [-5.1, -5.3, -4.9]}
    undertrained = paired_cell(gains, train={"ce": 0.93, "iy": 0.71, "ib": 0.70})
    found = {c["claim"]: c for c in comparisons(undertrained)}
    assert {c["verdict"] for c in found.values()} == {"inconclusive"}
    c = found["ib > ce"]
    assert c["ci_high"] < 0  # the interval alone would say "does not hold"
    assert "training budget" in c["reason"] and "70.0 % (ib) against 93.0 % (ce)" in c["reason"]
    assert c["train_a"] == pytest.approx(70.0) and c["train_b"] == pytest.approx(93.0)
    # the same accuracies with train accuracies within the gap: decided by the interval
    converged = paired_cell(gains, train={"ce": 1.0, "iy": 0.99, "ib": 0.985})
    found = {c["claim"]: c for c in comparisons(converged)}
    assert found["ib > ce"]["verdict"] == "does not hold"
    assert budget_reason({"ce": 93.0, "ib": 83.0}) is None  # exactly BUDGET_GAP apart
    assert budget_reason({"ce": 93.0, "ib": float("nan")}) is None
    assert "training budget" in budget_reason({"ce": 93.0, "ib": 82.9})


def test_summarise_nothing():
    s = summarise([])
    assert len(s) == 0 and {"mean", "std", "n", "paper"} <= set(s.columns)


# -- configs -------------------------------------------------------------------------------


def test_cell_configs_ce_gets_layers_times_steps():
    mlp = TrainConfig(dataset="mnist", steps=10, beta=1e-3)
    configs = cell_configs(mlp, seeds=(0, 1))
    # (the order of rows and seeds is free)
    assert sorted((c.method, c.beta, c.seed, c.steps) for c in configs) == [
        ("ce", 0.0, 0, 30), ("ce", 0.0, 1, 30),  # 3 layers of 784-512-256-10 times 10 steps
        ("ib", 0.0, 0, 10), ("ib", 0.0, 1, 10), ("ib", 1e-3, 0, 10), ("ib", 1e-3, 1, 10),
    ]  # fmt: skip
    conv = TrainConfig(dataset="cifar10", steps=10)
    assert cell_configs(conv, rows=["ce"], seeds=[0])[0].steps == 40  # 3 conv blocks + 1 linear
    assert cell_configs(mlp, rows=["ce"], seeds=[0], ce_steps=7)[0].steps == 7
    assert cell_configs(mlp, rows=["ib"], seeds=[0], beta=0.5)[0].beta == 0.5
    for c in configs:
        assert (c.dataset, c.fraction, c.sigma, c.batch_size) == (mlp.dataset, 1.0, mlp.sigma, 128)


def test_cell_configs_rejects_bad_rows():
    base = TrainConfig(dataset="mnist", beta=0.0)
    with pytest.raises(ValueError, match="row"):
        cell_configs(base, rows=["mine"])
    with pytest.raises(ValueError, match="beta"):
        cell_configs(base, rows=["ib"])


def test_configs_from_params_rows_seeds_and_training_params():
    params = {
        "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}, {"dataset": "cifar10", "steps": 5}],
        "rows": ["ce", "iy", "ib"],
        "seeds": [0, 1],
        "beta": 1e-3,
        "sigma": 0.3,
        "batch_size": 64,
        "probe_steps": 50,
        "measure_steps": None,  # None means "the default"
    }
    configs = configs_from_params(params)
    assert len(configs) == 2 * 3 * 2
    mnist = [c for c in configs if c.dataset == "mnist"]
    assert sorted((ibcore.experiments.table1.row_of(c), c.seed, c.steps, c.beta) for c in mnist) == [
        ("ce", 0, 30, 0.0), ("ce", 1, 30, 0.0), ("ib", 0, 10, 1e-3), ("ib", 1, 10, 1e-3),
        ("iy", 0, 10, 0.0), ("iy", 1, 10, 0.0),
    ]  # fmt: skip
    assert all(c.fraction == 0.01 for c in mnist)
    cifar = [c for c in configs if c.dataset == "cifar10"]
    assert [c.steps for c in cifar if c.method == "ce"] == [20, 20] and cifar[0].fraction == 1.0
    for c in configs:
        assert (c.sigma, c.batch_size, c.probe_steps, c.measure_steps) == (0.3, 64, 50, 0)
    # CE steps set per cell; the defaults: three seeds, all rows, beta 1e-3
    (ce,) = configs_from_params({"cells": [{"dataset": "mnist", "steps": 10, "ce_steps": 7}], "rows": ["ce"],
                                 "seeds": [4]})  # fmt: skip
    assert (ce.steps, ce.seed) == (7, 4)
    default = configs_from_params({"cells": [{"dataset": "mnist"}]})
    assert len(default) == 9 and {c.seed for c in default} == {0, 1, 2}
    assert {c.beta for c in default if ibcore.experiments.table1.row_of(c) == "ib"} == {1e-3}


def test_configs_from_params_beta_sweep():
    configs = configs_from_params(
        {
            "cells": [{"dataset": "mnist", "fraction": 0.01, "steps": 10}],
            "betas": [0, 1e-3, 1e-2],
            "seeds": [0],
        }
    )
    assert sorted((c.method, c.beta, ibcore.experiments.table1.row_of(c)) for c in configs) == [
        ("ib", 0.0, "iy"),
        ("ib", 1e-3, "ib"),
        ("ib", 1e-2, "ib"),
    ]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "cells"),
        ({"cells": []}, "cells"),
        ({"cells": [{"dataset": "mnist"}], "seeds": []}, "seed"),
        ({"cells": [{"dataset": "mnist", "frac": 0.01}]}, "frac"),
        ({"cells": [{"dataset": "svhn"}]}, "dataset"),
        ({"cells": [{"dataset": "mnist", "fraction": 2}]}, "fraction"),
        ({"cells": [{"dataset": "mnist", "steps": 0}]}, "steps"),
        ({"cells": [{"dataset": "mnist"}], "betas": [1e-3, -1]}, "betas"),
        ({"cells": [{"dataset": "mnist"}], "beta": -1}, "beta"),
        ({"cells": [{"dataset": "mnist"}], "beta": 0, "rows": ["ib"]}, "beta"),
        ({"cells": [{"dataset": "mnist"}], "rows": ["xx"]}, "row"),
        ({"cells": [{"dataset": "mnist"}], "sigma": -0.5}, "sigma"),
    ],
)
def test_configs_from_params_rejects_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        configs_from_params(params)


def test_variant_configs_change_one_setting_of_the_full_ib_row():
    params = {
        "cells": [{"dataset": "mnist", "fraction": 1.0, "steps": 50}],
        "beta": 1e-3,
        "sigma": 1.0,
        "seeds": [0, 1],
        "variants": [
            {"dataset": "mnist", "fraction": 1.0, "sigma": 2.0},
            {"dataset": "mnist", "fraction": 1.0, "steps": 100, "seeds": [3]},
        ],
    }
    configs = table1.variant_configs(params)
    assert [(c.sigma, c.steps, c.seed) for c in configs] == [(2.0, 50, 0), (2.0, 50, 1), (1.0, 100, 3)]
    assert all(c.method == "ib" and c.beta == 1e-3 for c in configs)
    base = [c for c in table1.configs_from_params(params) if table1.row_of(c) == "ib"]
    assert not {repr(c.to_dict()) for c in configs} & {repr(c.to_dict()) for c in base}


@pytest.mark.parametrize(
    "variant, match",
    [
        ({"dataset": "mnist", "colour": 1}, "unknown variant keys"),
        ({"dataset": "mnist", "beta": 0.0}, "beta > 0"),
    ],
)
def test_bad_variants_are_clear_errors(variant, match):
    with pytest.raises(ValueError, match=match):
        table1.variant_configs({"cells": [{"dataset": "mnist"}], "variants": [variant]})


def test_variants_frame_names_the_changed_setting():
    def record(sigma, seed, acc):
        c = TrainConfig(
            dataset="mnist", fraction=1.0, method="ib", beta=1e-3, sigma=sigma, steps=50, seed=seed
        )
        return {"config": c.to_dict(), "metrics": {"test_accuracy": acc}, "timings": {"train_seconds": 1.0}}

    params = {"cells": [{"dataset": "mnist", "fraction": 1.0, "steps": 50}], "beta": 1e-3, "sigma": 1.0}
    frame = table1.variants_frame([record(1.0, 0, 0.9), record(1.0, 1, 0.8)], [record(2.0, 0, 0.95)], params)
    assert list(frame.setting) == ["as in the table", "sigma = 2.0"]
    assert frame["mean"].round(6).tolist() == [85.0, 95.0] and frame["n"].tolist() == [2, 1]


# -- Table 1 with the paper's penalty (issue 9 item 6) -------------------------------------------


def compression_params() -> dict:
    return {
        "dataset": "mnist",
        "fraction": 0.01,
        "steps": 10,
        "val_size": 100,
        "penalties": {"aamine": [1e-3, 1e-1], "pairwise_kl": [1e-2]},
        "noise": [{"sigma": 1.0, "sigma_mode": "absolute"}],
        "selection_seeds": [0],
        "seeds": [0, 1, 2],
        "ce_steps": 30,
        "transfer": {
            "cell": {"fraction": 1.0, "steps": 20, "val_size": 200, "ce_steps": 60},
            "seeds": [0, 1],
            "arms": ["aamine", "best_control"],
        },
    }


#: Test-accuracy offsets (points) over beta = 0 by (penalty, beta); cross-entropy -1 point.
GAIN = {
    ("aamine", 1e-3): [0.4, 0.5, 0.6],
    ("aamine", 1e-1): [-3.0] * 3,
    ("pairwise_kl", 1e-2): [-0.3, -0.2, -0.4],
}
VAL = {("aamine", 1e-3): 0.90, ("aamine", 1e-1): 0.80, ("pairwise_kl", 1e-2): 0.89}


def compression_record(config: TrainConfig) -> dict:
    base = 85.0 + 3 * config.seed + (10 if config.fraction == 1.0 else 0)
    if config.method == "ce":
        acc = base - 1.0
    elif config.beta == 0:
        acc = base
    else:
        acc = base + GAIN[(config.penalty, config.beta)][config.seed]
    val = VAL.get((config.penalty, config.beta), 0.85) if config.beta else 0.85
    return {
        "config": config.to_dict(),
        "status": "complete",
        "metrics": {"test_accuracy": acc / 100, "val_accuracy": val, "train_accuracy": 1.0},
    }


def compression_records(params: dict, transfer: bool) -> list[dict]:
    """Records of every run the study declares, stage by stage (the transfer cell's only when
    ``transfer``)."""
    from ibcore.core.results import config_id
    from ibcore.experiments import compression

    records: dict[str, dict] = {}
    for _ in range(4):
        for c in compression.configs_from_params(params, list(records.values())):
            if transfer or c.fraction < 1:
                records.setdefault(config_id(c.to_dict()), compression_record(c))
    return list(records.values())


def test_paper_penalty_table_rows_and_pending_transfer():
    from ibcore.experiments import compression, penalty_table

    params = compression_params()
    records = compression_records(params, transfer=False)
    first, second = penalty_table.paper_penalty_table(params, records)
    assert (first["stage"], first["fraction"], second["stage"], second["fraction"]) == (
        "confirmation",
        0.01,
        "transfer",
        1.0,
    )
    rows = {r["row"]: r for r in first["rows"]}
    assert [r["row"] for r in first["rows"]] == ["cross-entropy", "I(Y;L) only", "aamine", "pairwise_kl"]
    aamine = rows["aamine"]
    assert aamine["paper_penalty"] and aamine["beta"] == 1e-3  # chosen on validation, not test
    assert aamine["n"] == 3 and aamine["status"] == "complete"
    assert aamine["mean"] == pytest.approx(85.0 + 3 + 0.5) and aamine["std"] == pytest.approx(3.1)
    assert aamine["train_mean"] == pytest.approx(100.0)
    # the difference to beta = 0 is the compression study's own paired row
    (study,) = [r for r in compression.paired_rows(params, records) if r["penalty"] == "aamine"]
    assert aamine["vs_iy"]["mean"] == pytest.approx(study["mean"]) == pytest.approx(0.5)
    assert aamine["vs_iy"]["verdict"] == study["verdict"] == "holds"
    assert aamine["vs_ce"]["mean"] == pytest.approx(1.5) and aamine["vs_ce"]["verdict"] == "holds"
    assert rows["pairwise_kl"]["vs_iy"]["verdict"] == "does not hold"
    assert rows["cross-entropy"]["vs_iy"]["mean"] == pytest.approx(-1.0)
    # the transfer cell: declared, nothing stored -> pending, never NaN in a verdict
    assert [r["row"] for r in second["rows"]] == ["cross-entropy", "I(Y;L) only", "aamine", "pairwise_kl"]
    assert {r["status"] for r in second["rows"]} == {penalty_table.PENDING}
    assert all(r["n"] == 0 for r in second["rows"])
    text = penalty_table.verdict_markdown([first, second])
    assert "**MNIST 100 %**: the paper's penalty (aamine, β = 0.001): pending (runs not stored)" in text
    assert "against β = 0 +0.50 points" in text and "does not hold: pairwise_kl" in text
    table_cells = [{"dataset": "mnist", "fraction": 0.01, "steps": 2000}]
    assert "10 IB steps per layer (our earlier Table 1 runs: 2000)" in penalty_table.differences(
        first, table_cells
    )
    assert "600" not in penalty_table.differences(first) and "100 further training images" in (
        penalty_table.differences(first)
    )
    later = penalty_table.differences(second)
    assert "carried over from the MNIST 1 % choice" in later and "trained on the other 59800" in later


def test_paper_penalty_table_transfer_once_stored():
    from ibcore.experiments import penalty_table

    params = compression_params()
    _, second = penalty_table.paper_penalty_table(params, compression_records(params, transfer=True))
    rows = {r["row"]: r for r in second["rows"]}
    assert {r["n"] for r in rows.values()} == {2}
    assert rows["aamine"]["vs_iy"]["mean"] == pytest.approx(0.45) and rows["aamine"]["vs_iy"]["n"] == 2
    assert rows["aamine"]["mean"] == pytest.approx(95.0 + 1.5 + 0.45)


def test_claims_rows_of_the_paper_penalty():
    from ibcore.report import claims

    params = compression_params()
    rows = claims.penalty_rows(compression_records(params, transfer=False), "fake", params)
    by = [(r["key"], r["verdict"], r["note"].split(";")[0]) for r in rows]
    study = "compression study's runs: 10 IB steps a layer, β chosen on validation"
    assert by == [
        ("ib_gt_iy", claims.HOLDS, study),
        ("ib_gt_iy", claims.NOT_MEASURED, "pending"),
        ("ib_gt_ce", claims.HOLDS, study),
        ("ib_gt_ce", claims.NOT_MEASURED, "pending"),
    ]
    assert "MNIST 1 %, the paper's penalty (aamine, β = 0.001): +0.50 points, 95 % CI [" in rows[0]["ours"]
    assert {r["verdict"] for r in claims.penalty_rows([], "fake", {})} == {claims.NOT_MEASURED}
