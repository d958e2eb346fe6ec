"""The Figure 1 experiment (ibcore.experiments.figure1) at toy sizes: records, resumption, tables, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.config import TrainConfig
from ibcore.core.data import DataError, find_file
from ibcore.core.results import config_id, load_records
from ibcore.experiments import figure1, figure1_early, figure1_run

TINY = dict(
    sigma2_grid=[0.0, 0.1],
    seeds=[0],
    steps=5,
    batch_size=16,
    n_samples=64,
    gaussian_samples=64,
    widths=[784, 32, 16, 8],
    hidden=[16],
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def have_mnist() -> bool:
    try:
        find_file("mnist")
    except DataError:
        return False
    return True


needs_mnist = pytest.mark.skipif(not have_mnist(), reason="mnist.npz not found (set IBCORE_DATA)")


def count_estimates(monkeypatch) -> list[dict]:
    """Record every config that reaches the estimator."""
    calls: list[dict] = []
    real = figure1.make_estimator

    def counting(config, network, device):
        calls.append(config)
        return real(config, network, device)

    monkeypatch.setattr(figure1_run, "make_estimator", counting)
    return calls


@needs_mnist
def test_tiny_run_writes_one_record_per_config_and_is_not_rerun(tmp_path, monkeypatch):
    calls = count_estimates(monkeypatch)
    records = figure1.run_figure1(tmp_path, device="cpu", **TINY)
    assert len(records) == len(calls) == 2 * 2 * 2  # panels x estimators x sigma2 (one seed)
    files = sorted((tmp_path / "figure1").glob("*.json"))
    assert len(files) == 8
    for r in records:
        assert r["kind"] == "figure1" and r["status"] == "complete"
        assert "device" not in r["config"]
        assert r["environment"]["device"] == "cpu"
        assert set(r["timings"]) == {"setup_s", "estimate_s", "total_s"}
        assert len(r["curves"]["steps"]) == len(r["curves"]["dv_train"]) > 0
        m, c = r["metrics"], r["config"]
        if c["sigma2"] > 0:
            assert math.isfinite(m["mi"])
        if c["panel"] == "b":
            assert (m["true_mi"] is None) == (c["sigma2"] == 0)
        else:
            assert "true_mi" not in m and c["widths"] == [784, 32, 16, 8] and c["n_samples"] == 64
    # JSON has no infinity: sigma^2 = 0 stores true_mi as null, never the token Infinity
    for path in files:
        text = path.read_text()
        assert "Infinity" not in text and "NaN" not in text
        json.loads(text)

    # a second call reads every record back: no estimator, no data loading, same timings
    mtimes = [p.stat().st_mtime_ns for p in files]

    def no_data(*args, **kwargs):
        raise AssertionError("data loaded although every record exists")

    monkeypatch.setattr(figure1_run, "load_dataset", no_data)
    again = figure1.run_figure1(tmp_path, device="cpu", **TINY)
    assert len(calls) == 8
    assert [r["timings"] for r in again] == [r["timings"] for r in records]
    assert [p.stat().st_mtime_ns for p in files] == mtimes

    # one more seed runs only the new configs
    figure1.run_figure1(tmp_path, device="cpu", **{**TINY, "seeds": [0, 1], "panels": ["b"]})
    assert len(calls) == 8 + 4
    assert len(load_records(tmp_path, "figure1")) == 12


def test_panel_b_table_and_summary(tmp_path):
    params = {**TINY, "seeds": [0, 1], "sigma2_grid": [0.0, 0.05, 0.5], "panels": ["b"]}
    records = figure1.run_figure1(tmp_path, device="cpu", **params)
    assert len(records) == 2 * 3 * 2
    table = figure1.figure1_table(records)
    assert list(table.columns) == figure1.TABLE_COLUMNS
    assert set(table["status"]) <= {"certified", "above log N", "above upper bound", "below lower bound"}
    assert (table["holdout"] == 13).all()  # round(0.2 * 64) held-out samples
    assert len(table) == 2 * 3
    assert (table["n"] == 2).all()
    assert table["std"].notna().all()
    assert list(table["estimator"].unique()) == ["mine", "aamine"]
    zero = table[table["sigma2"] == 0]
    assert (zero["true_mi"] == math.inf).all() and zero["rel_err"].isna().all()
    positive = table[table["sigma2"] > 0]
    expected = [
        linear_gaussian_mi(figure1.gaussian_weight(records[0]["config"]), torch.eye(8), s2)
        for s2 in positive["sigma2"]
    ]
    assert positive["true_mi"].tolist() == pytest.approx(expected)
    assert positive["rel_err"].notna().all()

    summary = figure1.figure1_summary(table)
    assert math.isnan(summary["aa_zero"]) and summary["aa_monotone"] is None  # no panel a
    assert summary["aa_max_rel_err"] >= 0 and summary["aa_worst_sigma2"] in (0.05, 0.5)
    verdict = figure1.figure1_verdict(summary)
    assert "Eq. 5" in verdict and "%" in verdict
    shown = figure1.figure1_display_table(table)
    assert len(shown) == len(table) and "±" in shown["estimate [nats]"].iloc[0]


def test_summary_of_a_made_up_panel_a():
    import pandas as pd

    rows = [  # (panel, estimator, sigma2, estimate, Gaussian bound); held-out N = 1000: log N = 6.9
        ("a", "aamine", 0.0, 1e5, 20.0),
        ("a", "aamine", 0.01, 8.0, 30.0),  # above log N: judges nothing
        ("a", "aamine", 0.1, 3.0, 4.0),
        ("a", "aamine", 1.0, 0.5, 0.4),  # above the Gaussian bound
        ("a", "mine", 0.0, 2.0, math.inf),
        ("a", "mine", 0.01, 1.5, 30.0),
        ("a", "mine", 0.1, 1.0, 4.0),
        ("a", "mine", 1.0, 0.1, 0.4),
    ]
    records = [
        {
            "kind": "figure1",
            "config": {"panel": p, "estimator": e, "sigma2": s2, "seed": 0},
            "metrics": {"mi": mi, "holdout_size": 1000, "gaussian_upper_bound": None if s2 == 0 else ub},
            "timings": {"total_s": 1.0},
        }
        for p, e, s2, mi, ub in rows
    ]
    table = figure1.figure1_table(records)
    assert isinstance(table, pd.DataFrame) and len(table) == 8
    s = figure1.figure1_summary(table)
    assert s["aa_zero"] == 1e5 and s["mine_zero"] == 2.0
    assert s["aa_above_bound"] == [1.0] and s["aa_above_log_n"] == [0.01]
    assert s["aa_certified_sigma2"] == [0.1] and s["aa_monotone"] is None  # one certified sigma^2
    assert s["certified_sigma2"] == [0.1] and math.isnan(s["aa_slope"])
    assert s["zero_status"] == {"aamine": "above log N", "mine": "certified"}
    text = figure1.figure1_verdict(s)
    assert "→ ∞" in text and "above an upper bound at σ² = 1" in text and "not measurable" in text
    assert figure1.figure1_table([]).empty


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sigma2_grid": [0.0, -0.1]}, "sigma\\^2 must be a finite number >= 0"),
        ({"sigma2_grid": [float("nan")]}, "sigma\\^2 must be a finite number >= 0"),
        ({"sigma2_grid": []}, "sigma2_grid must list at least one"),
        ({"sigma2_grid": [0.1, 0.1]}, "repeated"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"seeds": []}, "seeds must list at least one seed"),
        ({"seeds": [-1]}, "seeds must be integers >= 0"),
        ({"seeds": 3}, "seeds must be a list"),
        ({"sigma2_grid": 0.1}, "sigma2_grid must be a list"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"widths": [100, 10]}, "widths must start at 784"),
        ({"n_samples": 10}, "n_samples=10 leaves 8 samples for training"),
        ({"n_samples": 70000}, "exceeds the 60000 MNIST training images"),
        ({"gaussian_dims": [8]}, "gaussian_dims must be"),
        ({"panels": ["c"]}, "unknown panel 'c'"),
        ({"estimators": ["knn"]}, "unknown estimator 'knn'"),
        ({"copy_lr_factor": -1}, "copy_lr_factor must be"),
        ({"training_critic": "yes"}, "training_critic must be true or false"),
        ({"early_stopping": {"knn": {"patience": 2}}}, "unknown estimator 'knn'"),
        ({"early_stopping": {"mine": {}}}, "patience must be a positive integer"),
        ({"early_stopping": {"mine": {"patience": 2, "wait": 3}}}, "keys among"),
        ({"early_stopping": {"mine": {"patience": 2, "min_delta": -1}}}, "min_delta must be"),
        ({"early_stopping": [3]}, "early_stopping must map estimators"),
    ],
)
def test_bad_parameters_raise_before_any_work(tmp_path, monkeypatch, change, match):
    calls = count_estimates(monkeypatch)
    with pytest.raises(ValueError, match=match):
        figure1.run_figure1(tmp_path, device="cpu", **{**TINY, **change})
    assert calls == []
    assert not (tmp_path / "figure1").exists()


def test_unknown_device_raises_before_any_work(tmp_path, monkeypatch):
    calls = count_estimates(monkeypatch)
    with pytest.raises(ValueError, match="device='tpu'"):
        figure1.run_figure1(tmp_path, device="tpu", **TINY)
    assert calls == [] and not (tmp_path / "figure1").exists()


def test_configs_are_complete_and_device_free():
    configs = figure1.figure1_configs(**{**TINY, "seeds": [0, 3]})
    assert len(configs) == 2 * 2 * 2 * 2
    a = next(c for c in configs if c["panel"] == "a" and c["estimator"] == "aamine")
    b = next(c for c in configs if c["panel"] == "b" and c["estimator"] == "mine")
    for key in ("panel", "estimator", "sigma2", "seed", "steps", "batch_size", "lr", "hidden", "version"):
        assert key in a and key in b
    assert a["n_samples"] == 64 and a["widths"] == [784, 32, 16, 8] and "copy_lr_factor" in a
    assert "widths" not in b and b["gaussian_dims"] == [8, 2] and "copy_lr_factor" not in b
    assert all("device" not in c for c in configs)
    json.dumps(configs)  # serialisable as they are


def test_seed_changes_the_random_net():
    c0, c1 = ({"seed": s, "widths": [784, 8, 4]} for s in (0, 1))
    w0 = figure1.panel_a_net(c0, torch.device("cpu")).blocks[0][1].weight
    w1 = figure1.panel_a_net(c1, torch.device("cpu")).blocks[0][1].weight
    assert not torch.equal(w0, w1)
    assert torch.equal(w0, figure1.panel_a_net(c0, torch.device("cpu")).blocks[0][1].weight)


def test_gaussian_upper_bound_is_eq5_for_a_linear_layer():
    """For Gaussian L = W X the bound is exact: it equals Eq. 5 up to sampling error."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 5, generator=gen)
    x = torch.randn(50_000, 5, generator=gen)
    bound = figure1.gaussian_upper_bound(x @ w.T, 0.1)
    assert bound == pytest.approx(linear_gaussian_mi(w, torch.eye(5), 0.1), rel=0.02)
    assert figure1.gaussian_upper_bound(x @ w.T, 0.0) == math.inf


def test_relative_results_dir_is_taken_from_the_project_root(tmp_path):
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "nbs").mkdir()
    assert (
        figure1.resolve_results_dir("results/tiny", start=tmp_path / "nbs") == tmp_path / "results" / "tiny"
    )
    assert figure1.resolve_results_dir(tmp_path / "abs") == tmp_path / "abs"


def test_training_critics_join_panel_b_only_and_early_stopping_leaves_other_configs_alone():
    plain = figure1.figure1_configs(**TINY)
    both = figure1.figure1_configs(**TINY, training_critic=True)
    assert both[: len(plain)] == plain  # the paper's configs keep their hashes
    extra = both[len(plain) :]
    assert {(c["panel"], c["estimator"]) for c in extra} == {("b", "tied"), ("b", "aamine_penalty")}
    penalty = next(c for c in extra if c["estimator"] == "aamine_penalty")
    assert penalty["hidden"] == list(TrainConfig().critic_hidden)  # training's critic size
    stopped = figure1.figure1_configs(**TINY, early_stopping={"mine": {"patience": 2}})
    assert [c for c in stopped if c["estimator"] != "mine"] == [c for c in plain if c["estimator"] != "mine"]
    mine = [c for c in stopped if c["estimator"] == "mine"]
    assert mine and all(
        c["early_stopping"] == {"patience": 2, "eval_every": 100, "min_steps": 200, "min_delta": 0.005}
        for c in mine
    )
    assert {config_id(c) for c in mine}.isdisjoint(config_id(c) for c in plain)


def test_early_stopped_panel_b_records_their_stop_and_reference_split(tmp_path):
    setting = {"patience": 1, "eval_every": 5, "min_steps": 5}
    params = {**TINY, "steps": 400, "panels": ["b"], "sigma2_grid": [0.5], "training_critic": True}
    records = figure1.run_figure1(
        tmp_path, device="cpu", **params, early_stopping={e: setting for e in figure1.ALL_ESTIMATORS}
    )
    assert len(records) == 4
    for r in records:
        m = r["metrics"]
        assert 5 <= m["best_step"] <= m["stop_step"] < 400  # stopped before the budget
        assert m["holdout_size"] == 7  # the second half of round(0.2 * 64) = 13 held-out samples
        assert r["curves"]["valid_steps"][-1] == m["stop_step"]
    a = {
        "dataset": "mnist",
        "widths": [784, 8],
        "n_samples": 64,
        "seed": 0,
        "holdout_fraction": 0.2,
        "sigma2": 1,
    }
    assert figure1.reference_key(a) != figure1.reference_key({**a, "early_stopping": setting})
    held = figure1.heldout_indices(64, 0.2, 0, early_stopping=True)
    assert len(held) == 7 and set(held.tolist()) < set(figure1.heldout_indices(64, 0.2, 0).tolist())


def fake_record(est, s2, seed, mi, *, stop=None, steps=100, seconds=1.0):
    config = {"panel": "b", "estimator": est, "sigma2": s2, "seed": seed, "steps": steps}
    metrics = {"mi": mi, "true_mi": 1.0}
    if stop is not None:
        config["early_stopping"] = {"patience": 2}
        metrics["stop_step"] = stop
    return {"config": config, "metrics": metrics, "timings": {"estimate_s": seconds}}


def test_early_stopping_comparison_flags_a_change_beyond_the_seed_spread():
    full = [
        fake_record(e, s2, k, v)
        for e in ("mine", "aamine")
        for s2 in (0.0, 0.1)
        for k, v in ((0, 1.0), (1, 1.2))
    ]
    early = [
        fake_record("mine", s2, k, v, stop=40, seconds=0.5)
        for s2 in (0.0, 0.1)
        for k, v in ((0, 1.1), (1, 1.25))
    ]
    early += [fake_record("aamine", 0.0, k, 9.0, stop=50) for k in (0, 1)]  # sigma^2 = 0: never judged
    early += [fake_record("aamine", 0.1, k, v, stop=100) for k, v in ((0, 0.5), (1, 0.6))]
    rows = figure1_early.comparison_rows(full, early)
    assert len(rows) == 4 and all(r["seeds"] == 2 for r in rows)
    mine = next(r for r in rows if r["estimator"] == "mine" and r["sigma2"] == 0.1)
    assert mine["diff"] == pytest.approx(0.075) and mine["within"]
    v = figure1_early.verdicts(rows)
    assert v["b/mine"]["unchanged"] and v["b/mine"]["steps_saved"] == pytest.approx(0.6)
    assert v["b/mine"]["time_saved"] == pytest.approx(0.5)
    assert not v["b/aamine"]["unchanged"] and v["b/aamine"]["changed_at"] == [0.1]
    assert v["b/aamine"]["steps_saved"] == 0
    data = {"settings": {"patience": 2}, "params": {"steps": 100}, "records": {"with": 8, "without": 8}}
    text = figure1_early.early_stopping_markdown({**data, "rule": figure1_early.RULE, "verdicts": v})
    assert "changed beyond seed spread at σ² = 0.1" in text and "steps saved 60 %" in text


def test_stored_comparisons_are_listed_by_label_and_state_the_profile_choice(tmp_path):
    rows = figure1_early.comparison_rows(
        [fake_record("mine", 0.1, k, 1.0 + k) for k in (0, 1)],
        [fake_record("mine", 0.1, k, 3.0 + k, stop=30) for k in (0, 1)],
    )
    data = {"version": figure1_early.EARLY_VERSION, "label": "x", "verdicts": figure1_early.verdicts(rows)}
    out = tmp_path / figure1_early.EARLY_FILE
    figure1_early.store_comparison(out, data)
    figure1_early.store_comparison(out, {**data, "label": "y"})
    figure1_early.store_comparison(out, data)  # same label: replaced, not repeated
    stored = figure1_early.load_early_stopping(tmp_path)
    assert [d["label"] for d in stored] == ["y", "x"]
    text = figure1_early.profile_choice_markdown(None, 300, stored)
    assert "full budget of 300 steps" in text and "beyond the seed spread for MINE (panel b)" in text
    assert "not measured" in figure1_early.profile_choice_markdown({"mine": {}}, 300, [])
