"""Grouped runs (ibcore.core.grouped) equal separate runs (ibcore.core.training.train) on the CPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ibcore.core.config import TrainConfig
from ibcore.core.grouped import IBGroupLayer, _Run, group_configs, run_groups, train_group
from ibcore.core.results import config_id, record_path
from ibcore.core.training import train
from ibcore.experiments.table1 import DataCache

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(
    dataset="mnist", fraction=0.01, steps=30, batch_size=32, widths=(784, 48, 24, 10), critic_hidden=(32,),
    probe_steps=30, checkpoints=2, checkpoint_probe_steps=20,
)  # fmt: skip
DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def cache():
    return DataCache(None, DEVICE)


def compare(single, grouped, path: str = "", rtol: float = 1e-3, atol: float = 1e-4, acc_atol: float = 2e-3):
    """Assert that two result trees (metrics, curves) agree; accuracies within ``acc_atol``
    (a few test images), every other number within rtol / atol; lists of the same length."""
    if isinstance(single, dict):
        assert set(single) == set(grouped), path
        for k in single:
            compare(single[k], grouped[k], f"{path}/{k}", rtol, atol, acc_atol)
    elif isinstance(single, list):
        assert len(single) == len(grouped), path
        for k, (a, b) in enumerate(zip(single, grouped, strict=True)):
            compare(a, b, f"{path}[{k}]", rtol, atol, acc_atol)
    elif isinstance(single, float):
        if "accuracy" in path:
            assert abs(single - grouped) <= acc_atol, (path, single, grouped)
        else:
            assert math.isclose(single, grouped, rel_tol=rtol, abs_tol=atol), (path, single, grouped)
    else:
        assert single == grouped, (path, single, grouped)


def check_group_equals_singles(configs, cache, **tol):
    datas = [cache.get(c) for c in configs]
    singles = [train(c, d, DEVICE, progress=False) for c, d in zip(configs, datas, strict=True)]
    grouped = train_group(configs, datas, DEVICE)
    for c, s, g in zip(configs, singles, grouped, strict=True):
        assert g.get("status", "complete") == s.get("status", "complete")
        parts = ("metrics", "curves")
        compare({k: s[k] for k in parts}, {k: g[k] for k in parts}, f"seed {c.seed} beta {c.beta}", **tol)
        assert g["timings"]["group_size"] == len(configs)
    return singles, grouped


def test_cross_entropy_group_equals_single_runs(cache):
    configs = [TrainConfig(**{**SMALL, "steps": 60}, method="ce", seed=s) for s in (0, 1)]
    check_group_equals_singles(configs, cache, rtol=1e-5, atol=1e-6, acc_atol=1e-4)


def test_cross_entropy_group_with_information_measurements(cache):
    configs = [TrainConfig(**{**SMALL, "steps": 40}, method="ce", seed=s, measure_steps=10) for s in (0, 2)]
    check_group_equals_singles(configs, cache)


def test_cross_entropy_group_with_held_out_measurements(cache):
    """With a validation split the cross-entropy checkpoint adds held-out I(Y;L) and probe bounds:
    the grouped trainer records them through the single trainer's own checkpoint."""
    base = {**SMALL, "steps": 40, "checkpoint_probe_steps": 5}
    configs = [TrainConfig(**base, method="ce", seed=s, measure_steps=10, val_size=100) for s in (0, 1)]
    _, grouped = check_group_equals_singles(configs, cache)
    assert all("I_y_val" in g["curves"]["ce"] and "I_y_probe_lower" in g["curves"]["ce"] for g in grouped)


def test_tied_group_of_seeds_betas_and_sigmas_equals_single_runs(cache):
    configs = [
        TrainConfig(**SMALL, seed=0, beta=0.0),
        TrainConfig(**SMALL, seed=1, beta=1e-3),
        TrainConfig(**SMALL, seed=0, beta=0.1, sigma=0.5, sigma_mode="layer_scaled"),
    ]
    assert len(group_configs(configs)) == 1
    _, grouped = check_group_equals_singles(configs, cache)
    assert len(grouped[0]["curves"]["layers"]) == 3 and "penalty_value" in grouped[1]["metrics"]


def test_pairwise_kl_group_equals_single_runs(cache):
    configs = [TrainConfig(**SMALL, seed=s, beta=b, penalty="pairwise_kl") for s, b in ((0, 1e-3), (1, 0.1))]
    check_group_equals_singles(configs, cache)


def test_validation_split_group_equals_single_runs(cache):
    """With a validation split probes and measurements draw from side generators."""
    configs = [TrainConfig(**SMALL, seed=s, beta=1e-3, val_size=100, max_layers=2) for s in (0, 1)]
    check_group_equals_singles(configs, cache)


def test_aamine_group_equals_single_runs_on_the_first_layer(cache):
    """The paper's penalty with two critic updates per layer update. Its critic's DV value is
    large and negative and its training chaotic, so the float-level differences of a batched
    product grow layer after layer: the first layer is compared tightly."""
    configs = [
        TrainConfig(**SMALL, seed=s, beta=b, penalty="aamine", critic_steps=2, max_layers=1)
        for s, b in ((0, 1e-3), (1, 0.1))
    ]
    check_group_equals_singles(configs, cache, rtol=1e-4, atol=1e-5)


def test_aamine_stopgrad_group_equals_single_runs(cache):
    configs = [
        TrainConfig(**SMALL, seed=s, beta=1e-3, penalty="aamine_stopgrad", max_layers=1) for s in (0, 1)
    ]
    check_group_equals_singles(configs, cache, rtol=1e-4, atol=1e-5)


def test_grouping_keys():
    base = TrainConfig(**SMALL)
    configs = [
        base,
        TrainConfig(**SMALL, seed=1, beta=1e-3),
        TrainConfig(**SMALL, seed=2, beta=1.0, sigma=2.0),
        TrainConfig(**{**SMALL, "steps": 10}),  # another length: another group
        TrainConfig(**SMALL, beta=1e-3, penalty="pairwise_kl"),  # another penalty: another group
        TrainConfig(**SMALL, beta=0.0, penalty="pairwise_kl"),  # no penalty acts at beta = 0: tied
        TrainConfig(**SMALL, method="ce"),
    ]
    groups = group_configs(configs)
    assert [len(g) for g in groups] == [4, 1, 1, 1]
    assert [len(g) for g in group_configs(configs, max_size=3)] == [3, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="differ in more than"):
        train_group(configs[3:5], [None, None], DEVICE)


def test_grouped_step_issues_no_host_sync(cache):
    """The profiler sees no aten::item / aten::_local_scalar_dense in a grouped IB step (tied and
    aamine), apart from the CPU's fused Adam reading its own step count (a CPU tensor; on CUDA
    the capturable optimizer keeps it on the device)."""
    from torch.profiler import ProfilerActivity, profile

    for penalty, kw in (("tied", {}), ("aamine", {"critic_steps": 2})):
        configs = [TrainConfig(**SMALL, seed=s, beta=1e-3, penalty=penalty, **kw) for s in (0, 1)]
        runs = [_Run(c, cache.get(c), DEVICE) for c in configs]
        layer = IBGroupLayer(runs, 1, DEVICE, capture=False)
        batches = [layer.batch() for _ in range(4)]
        layer.step(batches[0])  # the first batch sets the critics' scales (known on the host)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for b in batches[1:]:
                layer.step(b)
        events = list(prof.events())
        adam = [
            (e.time_range.start, e.time_range.end) for e in events if e.name.startswith("Optimizer.step#")
        ]
        assert adam, "the optimizer steps were not seen"
        syncs = [
            e.name
            for e in events
            if e.name in ("aten::item", "aten::_local_scalar_dense", "cudaDeviceSynchronize")
            and not any(a <= e.time_range.start and e.time_range.end <= b for a, b in adam)
        ]
        assert syncs == [], (penalty, syncs)


def test_run_groups_writes_records_and_resumes_per_group(tmp_path, cache):
    configs = [
        TrainConfig(**{**SMALL, "steps": 10}, seed=s, beta=b) for s, b in ((0, 0.0), (1, 1e-3), (0, 1e-3))
    ]
    sizes: list[int] = []
    records = run_groups(configs, tmp_path, DEVICE, cache.get, on_group=lambda g, r, s: sizes.append(len(g)))
    assert sizes == [3] and len(records) == 3
    for c, r in zip(configs, records, strict=True):
        path = record_path(tmp_path, "table1", c.to_dict())  # where table1.run_configs stores it
        assert path.is_file() and r["run_id"] == config_id(c.to_dict()) == path.stem
        assert r["status"] == "complete" and r["environment"]["device"] == "cpu"
        assert r["data_source"]["n_train"] == 600 and r["timings"]["group_size"] == 3
    first = json.loads(record_path(tmp_path, "table1", configs[1].to_dict()).read_text())
    record_path(tmp_path, "table1", configs[1].to_dict()).unlink()
    again = run_groups(configs, tmp_path, DEVICE, cache.get, on_group=lambda g, r, s: sizes.append(len(g)))
    assert sizes == [3, 1] and len(again) == 3  # only the missing run trained
    compare(first["metrics"], again[1]["metrics"])  # alone or in a group of 3: the same run


def test_gpu_paper_script_on_the_tiny_profile_cpu(tmp_path):
    """The prepared script, cut by its limit: the records of finished groups and the timings stay."""
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_paper.py"), "--profile", "tiny", "--device", "cpu",
           "--out", str(out), "--only", "beta_sweep", "table1", "--limit-s", "40"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    timings = json.loads((out / "gpu_timings.json").read_text())
    assert timings["status"] in ("complete", "cut") and timings["environment"]["device"] == "cpu"
    stored = list((out / "table1").glob("*.json"))
    assert timings["runs_stored"] == len(stored) == sum(g["trained"] for g in timings["groups"])
    assert timings["runs_stored"] >= 1 and timings["groups"][0]["size"] >= 1
