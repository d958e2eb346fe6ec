"""Many runs of one cell trained at once: the run axis stacked (issue 14).

Runs that share every shape (data set, fraction, widths, steps, batch size, learning rates, ...)
and differ only in seed, beta, sigma or sigma mode form a *group*. The group's nets, statistics
networks and optimizer states are stacked on a leading run axis of size R; one batched step
(``torch.baddbmm`` for the MLP's linear layers, ``torch.func.vmap`` for other blocks) trains all
R runs. The loss is the sum of the runs' losses and nothing couples runs, so each run's gradient
is its own, and Adam on a stacked tensor is each run's Adam (an elementwise rule).

Each run keeps the random streams of the single-run trainer (:mod:`ibcore.core.training`):
its model and critics are built by the same functions from the same seeds, and its batches,
permutations and noise are drawn from its own generator, one run after another. Checkpoint
measurements (DV bounds, exact bounds, probes) run per run on the unstacked modules with the
trainer's own functions. A group's records therefore equal the separate runs' records within
floating-point tolerance (``tests/test_grouped.py``).

Penalties covered: "tied" (the default, Eq. 2 with the tied critic), "pairwise_kl", "logdet",
"weight_decay" (closed forms) and the paper's "aamine" / "aamine_stopgrad" (its critic trains a
copy of block i, ``critic_steps`` updates per layer update). The conv-net runs through ``vmap``.

``capture=True`` (CUDA only) replays the fixed-shape step as a CUDA graph (:class:`Replayable`):
the random draws stay outside the graph, on the device, and the step itself issues no host sync.

This module is the entry point (:func:`train_group`, :func:`run_groups`) and re-exports the
pieces: :mod:`ibcore.core.grouped_keys` (which runs share a group), :mod:`~ibcore.core.grouped_stack`
(stacked modules and batched math), :mod:`~ibcore.core.grouped_aamine` (the stacked AA-MINE
critic), :mod:`~ibcore.core.grouped_replay` (CUDA-graph replay), :mod:`~ibcore.core.grouped_ce` and
:mod:`~ibcore.core.grouped_ib` (the cross-entropy and layer-by-layer IB loops).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset
from ibcore.core.grouped_aamine import StackedAAMine
from ibcore.core.grouped_ce import train_ce_group
from ibcore.core.grouped_ib import IBGroupLayer, _Run, train_ib_group
from ibcore.core.grouped_keys import (
    CRITIC_PENALTIES,
    PER_RUN,
    check_group,
    effective_penalty,
    group_configs,
    group_key,
)
from ibcore.core.grouped_replay import Replayable, group_timings
from ibcore.core.grouped_stack import (
    StackedModule,
    StackedMovingAverage,
    batched_closed_penalty,
    batched_dv_bound,
    batched_floored_logsumexp,
    batched_squared_distances,
    gather_rows,
    label_scores,
    stacked_adam,
    stacked_param_groups,
    tied_initial_scale,
    tied_scores,
)
from ibcore.core.results import atomic_torch_save, environment, model_path, read_record, write_record

__all__ = [
    "CRITIC_PENALTIES",
    "PER_RUN",
    "IBGroupLayer",
    "Replayable",
    "StackedAAMine",
    "StackedModule",
    "StackedMovingAverage",
    "_Run",
    "batched_closed_penalty",
    "batched_dv_bound",
    "batched_floored_logsumexp",
    "batched_squared_distances",
    "check_group",
    "effective_penalty",
    "gather_rows",
    "group_configs",
    "group_key",
    "group_timings",
    "label_scores",
    "run_groups",
    "stacked_adam",
    "stacked_param_groups",
    "tied_initial_scale",
    "tied_scores",
    "train_ce_group",
    "train_group",
    "train_ib_group",
]


def train_group(
    configs: Sequence[TrainConfig], datas: Sequence[Dataset], device: torch.device, capture: bool = False
) -> list[dict]:
    """Train a group (see :func:`group_configs`); returns one result per run, as
    :func:`ibcore.core.training.train` returns."""
    check_group(configs, datas)
    trainer = train_ce_group if configs[0].method == "ce" else train_ib_group
    return trainer(configs, datas, device, capture=capture)


def run_groups(
    configs: Iterable[TrainConfig],
    results_dir: str | Path,
    device: torch.device,
    data_for: Callable[[TrainConfig], Dataset],
    kind: str = "table1",
    max_group: int = 0,
    capture: bool = False,
    on_group: Callable[[list[TrainConfig], list[dict], float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    save_models: bool = False,
) -> list[dict]:
    """Run every config not yet stored under ``results_dir`` in groups and return all records.

    Each run's record has the path and format that ``ibcore.experiments.table1.run_configs``
    writes (``data_for`` gives a run's data, e.g. ``table1.DataCache(...).get``) and is stored as
    soon as its group ends; a group with some runs stored trains only the rest. ``on_group``
    is called with (configs, records, seconds) after each group; ``stop()`` true before a group
    skips the groups left; ``save_models`` keeps each net's weights beside its record."""
    configs = list(configs)
    stored = {id(c): read_record(results_dir, kind, c.to_dict(), save_models) for c in configs}
    todo = [c for c in configs if stored[id(c)] is None]
    for group in group_configs(todo, max_size=max_group):
        if stop is not None and stop():
            break
        datas = [data_for(c) for c in group]
        t0 = time.perf_counter()
        outs = train_group(group, datas, device, capture=capture)
        written = []
        for c, d, out in zip(group, datas, outs, strict=True):
            model = out.pop("model")
            if save_models:
                atomic_torch_save(model.state_dict(), model_path(results_dir, kind, c.to_dict()))
            record = {"kind": kind, "config": c.to_dict(), **out}
            record |= {"environment": environment(device), "data_source": d.source}
            write_record(results_dir, record)
            stored[id(c)] = read_record(results_dir, kind, c.to_dict(), save_models)
            written.append(stored[id(c)])
        if on_group is not None:
            on_group(group, written, time.perf_counter() - t0)
    return [stored[id(c)] for c in configs if stored[id(c)] is not None]
