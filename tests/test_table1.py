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
from ibcore.experiments.table1 import PAPER, cell_configs, claims, configs_from_params, run_configs, summarise


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


def fake_record(dataset: str, fraction: float, row: str, seed: int, acc: float) -> dict:
    method = "ce" if row == "ce" else "ib"
    beta = 1e-3 if row == "ib" else 0.0
    config = TrainConfig(dataset=dataset, fraction=fraction, method=method, beta=beta, seed=seed)
    return {
        "kind": "table1",
        "config": config.to_dict(),
        "metrics": {"test_accuracy": acc},
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
    found = {(c["fraction"], c["claim"]): c for c in claims(s)}
    assert found[(0.01, "ib > iy")]["ours"] and found[(0.01, "ib > iy")]["paper"]
    assert found[(0.01, "iy > ce")]["difference"] == pytest.approx(4.0)
    assert not found[(0.01, "iy > ce")]["paper"]  # the paper's I(Y;L) row is below CE at 1 %
    assert (0.1, "ib > ce") not in found


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
