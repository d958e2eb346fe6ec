"""Shared fixtures: one CPU thread, the MNIST 1 % subset loaded once, tiny training configs."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset, load_dataset

# A net and statistics networks small enough that a whole IB run takes a fraction of a second.
TINY = {
    "dataset": "mnist",
    "fraction": 0.01,
    "steps": 4,
    "batch_size": 32,
    "checkpoints": 2,
    "checkpoint_probe_steps": 2,
    "probe_steps": 5,
    "widths": (784, 16, 12, 10),
    "critic_hidden": (16,),
}


@pytest.fixture(scope="session")
def one_thread():
    """torch on one thread for the session (the machine is shared), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mnist_small(one_thread) -> Dataset:
    """MNIST, the stratified 1 % training subset drawn with seed 0 (600 images), on the CPU."""
    return load_dataset("mnist", device="cpu", fraction=0.01, subset_seed=0)


@pytest.fixture
def tiny_config(one_thread) -> Callable[..., TrainConfig]:
    """``tiny_config(**overrides)``: a TrainConfig of a tiny MNIST 1 % run."""

    def make(**overrides) -> TrainConfig:
        return TrainConfig(**{**TINY, **overrides})

    return make


_LOADS: dict[tuple, Dataset] = {}


@pytest.fixture
def cached_loads(monkeypatch, mnist_small):
    """Make ``ibcore.experiments.table1`` load each (dataset, fraction, seed) once per test session.

    ``table1.run_configs`` builds a fresh data cache per call; the tests call it often.
    """
    import ibcore.experiments.table1

    real = ibcore.experiments.table1.load_dataset
    _LOADS.setdefault(("mnist", None, "cpu", 0.01, 0), mnist_small)

    def load(name, data_dir=None, device="cpu", fraction=1.0, subset_seed=0):
        key = (name, data_dir, str(device), fraction, subset_seed)
        if key not in _LOADS:
            _LOADS[key] = real(name, data_dir, device, fraction=fraction, subset_seed=subset_seed)
        return _LOADS[key]

    monkeypatch.setattr(ibcore.experiments.table1, "load_dataset", load)
    return _LOADS


@pytest.fixture(scope="session")
def paper_build(tmp_path_factory) -> dict:
    """The paper profile rendered once per session in a copy of the project: {"root", "proc"
    (the pipeline's CompletedProcess), "before" (the stored files under results/paper before the
    render, with their sizes)}."""
    from project_copy import copy_project, run_pipeline
    from test_paper_render import stored_files

    root = copy_project(tmp_path_factory.mktemp("paper"))
    before = stored_files(root / "results" / "paper")
    return {"root": root, "proc": run_pipeline("paper", root), "before": before}
