"""Every run trains on one torch thread whoever runs it (ibcore.core.runtime.RUN_THREADS), so its
record does not depend on the executor: torch's float32 products round differently on 2 threads."""

from __future__ import annotations

import dataclasses

import torch

from ibcore.core.config import TrainConfig
from ibcore.core.runtime import RUN_THREADS, torch_threads
from ibcore.experiments import table1
from ibcore.orchestration.jobs import Job, run_job


def test_torch_threads_sets_and_restores() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_run_in_the_pipelines_own_process_trains_single_threaded(monkeypatch, tmp_path) -> None:
    seen: list[int] = []
    monkeypatch.setattr(table1, "run_configs", lambda *a, **k: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    try:
        config = dataclasses.asdict(TrainConfig(dataset="mnist", method="ce", steps=1))
        run_job(Job("table1", "table1", str(tmp_path), config, key="k"))
        assert seen == [RUN_THREADS] == [1]
        assert torch.get_num_threads() == 2  # the caller's setting is back
    finally:
        torch.set_num_threads(1)
