"""The compression study (issue 9): runs declared from the profile, selection on validation,
paired comparisons on test. Records here are made up (no training)."""

from __future__ import annotations

import pytest

from ibcore.core.results import config_id
from ibcore.experiments import compression

PARAMS = {
    "dataset": "mnist",
    "fraction": 0.01,
    "steps": 10,
    "val_size": 100,
    "penalties": {
        "pairwise_kl": [1e-3, 1e-1],
        "aamine_stable": {"penalty": "aamine", "betas": [1e-2], "lr": 3e-4, "critic_steps": 5},
    },
    "noise": [{"sigma": 1.0, "sigma_mode": "absolute"}, {"sigma": 1.0, "sigma_mode": "layer_scaled"}],
    "selection_seeds": [0],
    "seeds": [0, 1, 2],
    "ce_steps": 30,
}


def _record(config, val: float, test: float, status: str = "complete") -> dict:
    return {
        "config": config.to_dict(),
        "status": status,
        "metrics": {"val_accuracy": val, "test_accuracy": test},
    }


def test_selection_declares_every_setting_and_each_arms_baseline():
    configs = compression.configs_from_params(PARAMS)
    ib = [c for c in configs if c.method == "ib"]
    # stage 1: pairwise_kl 2 betas x 2 noises, aamine_stable 1 beta x 2 noises, at seed 0 ...
    assert len([c for c in ib if c.beta > 0]) == 6
    # ... a baseline per learning rate (shared by penalties with one lr) on all seeds (stage 2)
    assert {(c.lr, c.seed) for c in ib if c.beta == 0} == {(lr, s) for lr in (1e-3, 3e-4) for s in (0, 1, 2)}
    stable = [c for c in ib if c.penalty == "aamine"]
    assert all(c.lr == 3e-4 and c.critic_steps == 5 for c in stable)
    assert len([c for c in configs if c.method == "ce"]) == 3
    assert len({config_id(c.to_dict()) for c in configs}) == len(configs)


def test_choice_reads_validation_never_test_and_declares_the_confirmation_runs():
    records = []
    for name, beta, noise in compression.grid(PARAMS):
        arm = compression.arms(PARAMS)[name]
        c = compression.penalty_config(PARAMS, arm, beta, noise, 0)
        best = name == "pairwise_kl" and beta == 1e-1 and noise["sigma_mode"] == "layer_scaled"
        # the setting best on validation is the worst on test: the choice must follow validation
        records.append(_record(c, val=0.9 if best else 0.8, test=0.5 if best else 0.95))
    choices = compression.choices(PARAMS, records)
    assert choices["pairwise_kl"]["best"]["beta"] == 1e-1
    assert choices["pairwise_kl"]["best"]["sigma_mode"] == "layer_scaled"
    declared = compression.configs_from_params(PARAMS, records)
    chosen = [
        c
        for c in declared
        if c.penalty == "pairwise_kl" and c.beta == 1e-1 and c.sigma_mode == "layer_scaled"
    ]
    assert sorted(c.seed for c in chosen) == [0, 1, 2]


def test_a_setting_with_a_diverged_run_is_never_chosen():
    records = []
    for name, beta, noise in compression.grid(PARAMS):
        c = compression.penalty_config(PARAMS, compression.arms(PARAMS)[name], beta, noise, 0)
        status = "diverged" if beta == 1e-1 else "complete"
        records.append(_record(c, val=0.99 if beta == 1e-1 else 0.8, test=0.8, status=status))
    assert compression.choices(PARAMS, records)["pairwise_kl"]["best"]["beta"] == 1e-3


def test_paired_rows_compare_each_arm_with_its_own_baseline():
    records = []
    arms = compression.arms(PARAMS)
    for name, beta, noise in compression.grid(PARAMS):
        records.append(_record(compression.penalty_config(PARAMS, arms[name], beta, noise, 0), 0.8, 0.8))
    choices = compression.choices(PARAMS, records)
    for name, choice in choices.items():
        for s, gain in zip((0, 1, 2), (1.0, 1.2, 0.9), strict=True):
            best = choice["best"]
            noise = {"sigma": best["sigma"], "sigma_mode": best["sigma_mode"]}
            c = compression.penalty_config(PARAMS, arms[name], best["beta"], noise, s)
            records = [r for r in records if config_id(r["config"]) != config_id(c.to_dict())]
            records.append(_record(c, 0.8, (80 + gain) / 100))
            base = compression.baseline_config(PARAMS, s, arms[name])
            base_acc = 0.80 if name == "pairwise_kl" else 0.85  # the lr-3e-4 baseline is better
            if config_id(base.to_dict()) not in {config_id(r["config"]) for r in records}:
                records.append(_record(base, 0.8, base_acc))
    rows = {r["penalty"]: r for r in compression.paired_rows(PARAMS, records)}
    assert rows["pairwise_kl"]["verdict"] == "holds" and rows["pairwise_kl"]["mean"] == pytest.approx(
        1.033, 1e-3
    )
    assert rows["aamine_stable"]["verdict"] == "does not hold"  # 81.x vs its own 85 % baseline
    assert rows["aamine_stable"]["lr"] == 3e-4 and rows["aamine_stable"]["critic_steps"] == 5


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="val_size > 0"):
        compression.configs_from_params({**PARAMS, "val_size": 0})
    with pytest.raises(ValueError, match="unknown penalty 'l1'"):
        compression.configs_from_params({**PARAMS, "penalties": {"x": {"penalty": "l1", "betas": [1]}}})
    with pytest.raises(ValueError, match="betas must be > 0"):
        compression.configs_from_params({**PARAMS, "penalties": {"logdet": [0.0]}})
    with pytest.raises(ValueError, match="duplicates"):
        compression.configs_from_params({**PARAMS, "seeds": [0, 0]})


TRANSFER = {
    **PARAMS,
    "penalties": {
        "aamine": [1e-5, 1e-3],
        "pairwise_kl": [1e-3, 1e-1],
        "weight_decay": [1e-5],
    },
    "noise": [{"sigma": 1.0, "sigma_mode": "absolute"}],
    "transfer": {"cell": {"fraction": 1.0, "steps": 20, "val_size": 50, "ce_steps": 60}, "seeds": [0, 1]},
}


def _stage1(params: dict, val_of) -> list[dict]:
    """Selection records of every setting with validation accuracy ``val_of(name, beta)``."""
    out = []
    for name, beta, noise in compression.grid(params):
        c = compression.penalty_config(params, compression.arms(params)[name], beta, noise, 0)
        out.append(_record(c, val=val_of(name, beta), test=0.5))
    return out


def test_transfer_waits_for_stage_one_then_carries_the_papers_penalty_and_the_best_control():
    # nothing of stage 3 before stage 1 is stored, apart from the cross-entropy runs
    early = [c for c in compression.transfer_configs(TRANSFER, []) if c.method == "ib"]
    assert early == []
    # weight decay is the control of highest validation accuracy; pairwise_kl wins on nothing
    val = {("aamine", 1e-5): 0.85, ("aamine", 1e-3): 0.9, ("weight_decay", 1e-5): 0.88}
    records = _stage1(TRANSFER, lambda name, beta: val.get((name, beta), 0.8))
    carried = compression.transfer_arms(TRANSFER, records)
    assert list(carried) == ["aamine", "weight_decay"]
    configs = compression.transfer_configs(TRANSFER, records)
    ib = [c for c in configs if c.method == "ib" and c.beta > 0]
    assert {(c.penalty, c.beta, c.seed) for c in ib} == {
        ("aamine", 1e-3, 0),
        ("aamine", 1e-3, 1),
        ("weight_decay", 1e-5, 0),
        ("weight_decay", 1e-5, 1),
    }
    # every stage-3 run is on the transfer cell, with its own validation split and seeds
    assert all(c.fraction == 1.0 and c.val_size == 50 and c.seed in (0, 1) for c in configs)
    assert {c.steps for c in configs if c.method == "ce"} == {60}
    assert {c.steps for c in configs if c.method == "ib"} == {20}
    # and the study declares them
    declared = {config_id(c.to_dict()) for c in compression.configs_from_params(TRANSFER, records)}
    assert {config_id(c.to_dict()) for c in configs} <= declared


def test_transfer_rows_are_paired_on_the_transfer_cell():
    val = {("aamine", 1e-5): 0.9, ("pairwise_kl", 1e-1): 0.9}
    records = _stage1(TRANSFER, lambda name, beta: val.get((name, beta), 0.8))
    assert [r["n"] for r in compression.transfer_rows(TRANSFER, records)] == [0, 0, 0]  # pending
    cell = compression.transfer_params(TRANSFER)
    for c in compression.transfer_configs(TRANSFER, records):
        gain = {"aamine": 0.01, "pairwise_kl": -0.02}.get(c.penalty, 0.0) if c.beta > 0 else 0.0
        records.append(_record(c, val=0.9, test=0.95 + gain + 0.001 * c.seed))
    rows = {r["penalty"]: r for r in compression.transfer_rows(TRANSFER, records)}
    assert set(rows) == {"cross-entropy", "aamine", "pairwise_kl"}
    assert rows["aamine"]["n"] == 2 and rows["aamine"]["mean"] == pytest.approx(1.0)
    assert rows["pairwise_kl"]["mean"] == pytest.approx(-2.0)
    assert cell["fraction"] == 1.0 and cell["seeds"] == [0, 1]


def test_bad_transfer_parameters_are_named():
    with pytest.raises(ValueError, match="transfer: unknown key"):
        compression.transfer_params({**TRANSFER, "transfer": {"cells": {}}})
    with pytest.raises(ValueError, match=r"transfer.cell: unknown key\(s\) \['stpes'\]"):
        compression.transfer_params({**TRANSFER, "transfer": {"cell": {"stpes": 3}}})
    with pytest.raises(ValueError, match="not an arm of the study"):
        compression.transfer_arms({**TRANSFER, "transfer": {"arms": ["logdet"]}}, [])


def test_the_answer_in_words_groups_penalties_by_verdict():
    from ibcore.experiments import compression_text

    rows = [
        {
            "penalty": "cross-entropy",
            "n": 5,
            "mean": -0.89,
            "low": -1.28,
            "high": -0.51,
            "verdict": "does not hold",
        },
        {"penalty": "aamine", "n": 5, "mean": 0.04, "low": -0.13, "high": 0.22, "verdict": "inconclusive"},
        {"penalty": "pairwise_kl", "n": 5, "mean": 0.16, "low": 0.03, "high": 0.30, "verdict": "holds"},
    ]
    text = compression_text.answer_markdown(rows, 0.01, 5)
    assert "MNIST 1 % (5 paired seeds)" in text
    assert "helps, beyond the seed spread, with pairwise_kl (+0.16 points, 95 % CI [+0.03, +0.30])" in text
    assert "Inconclusive (the interval contains 0) with aamine (+0.04" in text
    assert "not corrected for the 2 comparisons" in text
    assert text.endswith("training: (-0.89 points, 95 % CI [-1.28, -0.51]).")
    assert compression_text.stage3_markdown([{**rows[1], "n": 1}], 1.0, 3) == ""
    assert compression_text.stage3_markdown(rows, 1.0, 3).count("inconclusive") == 1
    assert compression_text.interval_text({"n": 1}) == "n < 2"
