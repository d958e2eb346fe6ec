"""The CPU's float32 matmul library (ibcore.core.cpu_matmul): oneDNN is taken only where its
products are float32-accurate, the choice is restored after a run, a run's record names it, and a
run trained with it repeats bit for bit."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ibcore.core import cpu_matmul
from ibcore.core.config import TrainConfig
from ibcore.experiments import table1
from ibcore.orchestration.jobs import Job, run_job

ONEDNN = cpu_matmul.onednn_is_float32()


def test_the_library_is_set_for_the_block_and_restored(monkeypatch) -> None:
    monkeypatch.delenv(cpu_matmul.ENV_VAR, raising=False)
    before = cpu_matmul.in_effect()
    with cpu_matmul.cpu_matmul("mkl") as chosen:
        assert chosen == cpu_matmul.in_effect() == "mkl"
    with cpu_matmul.cpu_matmul("auto") as chosen:
        assert chosen == ("onednn" if ONEDNN else "mkl") == cpu_matmul.in_effect()
    assert cpu_matmul.in_effect() == before


def test_the_environment_variable_overrides_auto_and_a_bad_value_is_named(monkeypatch) -> None:
    monkeypatch.setenv(cpu_matmul.ENV_VAR, "mkl")
    assert cpu_matmul.resolve("auto") == "mkl"
    monkeypatch.setenv(cpu_matmul.ENV_VAR, "openblas")
    with pytest.raises(ValueError, match="IBCORE_CPU_MATMUL='openblas'"):
        cpu_matmul.resolve("auto")
    with pytest.raises(ValueError, match="cpu_matmul='blis'"):
        cpu_matmul.resolve("blis")


def test_onednn_is_refused_where_its_products_are_not_float32(monkeypatch) -> None:
    monkeypatch.delenv(cpu_matmul.ENV_VAR, raising=False)
    monkeypatch.setattr(cpu_matmul, "onednn_is_float32", lambda: False)
    assert cpu_matmul.resolve("auto") == "mkl"
    with pytest.raises(ValueError, match="not float32-accurate"):
        cpu_matmul.resolve("onednn")


def test_the_accuracy_check_tells_float32_from_bfloat16_products() -> None:
    """A product of bfloat16-rounded inputs fails the tolerance by two orders of magnitude; a
    float32 one (MKL's) passes it by an order."""
    m, k, n = cpu_matmul.CHECKED_SHAPES[0]
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    exact = a.double() @ b.double()
    bf16 = (a.bfloat16().double() @ b.bfloat16().double()).sub(exact).abs().max() / exact.abs().max()
    assert bf16 > 100 * cpu_matmul.FLOAT32_TOLERANCE
    with cpu_matmul.cpu_matmul("mkl"):
        assert cpu_matmul.relative_error(m, k, n) < cpu_matmul.FLOAT32_TOLERANCE / 10


@pytest.mark.skipif(not ONEDNN, reason="oneDNN's products are not float32 on this CPU")
def test_onednn_products_are_float32_at_every_checked_shape() -> None:
    with cpu_matmul.cpu_matmul("onednn"):
        for m, k, n in cpu_matmul.CHECKED_SHAPES:
            assert cpu_matmul.relative_error(m, k, n, transposed=True) < cpu_matmul.FLOAT32_TOLERANCE


def test_a_run_job_uses_the_library_and_restores_the_callers(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(cpu_matmul.ENV_VAR, "onednn" if ONEDNN else "mkl")
    seen: list[str] = []
    monkeypatch.setattr(table1, "run_configs", lambda *a, **k: seen.append(cpu_matmul.in_effect()))
    config = dataclasses.asdict(TrainConfig(dataset="mnist", method="ce", steps=1))
    with cpu_matmul.cpu_matmul("mkl"):
        run_job(Job("table1", "table1", str(tmp_path), config, key="k"))
        assert cpu_matmul.in_effect() == "mkl"
    assert seen == ["onednn" if ONEDNN else "mkl"]


def _train_ib(tmp_path, name: str, library: str) -> dict:
    config = dataclasses.asdict(
        TrainConfig(
            dataset="mnist", method="ib", fraction=0.01, steps=20, beta=1e-3, probe_steps=20, checkpoints=2
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cpu_matmul.ENV_VAR, library)
        run_job(Job("table1", "table1", str(tmp_path / name), config, key=name))
    (path,) = (tmp_path / name / "table1").glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.skipif(not ONEDNN, reason="oneDNN's products are not float32 on this CPU")
def test_a_onednn_run_repeats_bit_for_bit_and_its_record_names_the_library(tmp_path) -> None:
    first, again = _train_ib(tmp_path, "a", "onednn"), _train_ib(tmp_path, "b", "onednn")
    assert first["environment"]["cpu_matmul"] == "onednn"
    assert first["metrics"] == again["metrics"]
    assert first["curves"] == again["curves"]
    mkl = _train_ib(tmp_path, "c", "mkl")
    assert mkl["environment"]["cpu_matmul"] == "mkl"
    assert mkl["curves"] != first["curves"]  # another summation order: the runs round differently
