"""The estimators against known truth (issue 10, item 5; issue 15, item 4).

The tasks (:mod:`ibcore.experiments.truth_tasks`): correlated Gaussians, the linear-Gaussian
layer of Eq. 5, the same samples through x -> x^3, an MNIST layer with X uniform over N images
(exact Bhattacharyya / pairwise-KL bracket) and a Gaussian class mixture for I(Y; L) with a
10-class label (Monte Carlo truth with its standard error).

Every estimator the project trains or reports runs on the same samples:

- :func:`ibcore.estimate_mi` with each method ("smile", "mine", "infonce", "ksg");
- the project's classes (:mod:`ibcore.core.estimators`, fixed step budget): ``MINE``,
  ``AA-MINE`` (copy trained at 0.1 lr), ``AA-MINE frozen``, and the forms training uses:
  ``AA-MINE tied`` (the tied mixture critic :class:`ibcore.core.critics.TiedMixtureCritic`,
  what every training record stores as I_x; :class:`ibcore.experiments.figure1.TiedAAMINE`),
  ``AA-MINE penalty`` (the critic of the paper's "aamine" penalty,
  :func:`ibcore.core.penalties.make_penalty`, copy at full lr) and ``label MINE``
  (:class:`ibcore.core.estimators.LabelMINE`, what training stores as I_y);
- ``MINE es`` / ``AA-MINE es``: MINE and AA-MINE with early stopping on a validation half of
  the held-out samples (``patience``, ``eval_every``, ``min_steps``; issue 15, item 2);
- the peers: torch-mist's SMILE when it imports beside our torch (optional), scikit-learn's
  KSG ``mutual_info_regression`` on 1-D tasks and ``mutual_info_classif`` on the 1-D label task.

One record per (task, estimator, seed) is stored under ``<results_dir>/truth/``
(:func:`ibcore.core.results.write_record`); :func:`run_battery` skips the stored ones and
:func:`battery_summary` gives bias in %, spread over seeds and time. The status of every
estimate (:func:`estimate_status`) is derived from its value when records are read.

The parameters live in :mod:`~ibcore.experiments.truth_params`, the estimator runners in
:mod:`~ibcore.experiments.truth_estimators`; their names are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from ibcore.core.results import environment, load_records, run_all
from ibcore.core.runtime import resolve_device
from ibcore.experiments.truth_estimators import (  # noqa: F401 - re-exported: the estimator runners
    PenaltyAAMINE,
    applicable,
    project_estimator,
    run_estimator,
    torch_mist_available,
)
from ibcore.experiments.truth_params import (  # noqa: F401 - re-exported: the battery's parameters
    EARLY_STOPPING,
    ESTIMATORS,
    PROFILES,
    PROJECT,
    TRAINING_CRITIC_HIDDEN,
    battery_params,
    notebook_battery_params,
)
from ibcore.experiments.truth_summary import (  # noqa: F401 - re-exported
    battery_frame,
    battery_summary,
    bias_pct,
    estimate_status,
    estimator_summary,
)
from ibcore.experiments.truth_tasks import (  # noqa: F401 - re-exported: the battery's tasks
    apply_map,
    label_mixture_mi,
    linear_weight,
    make_samples,
    mnist_layer,
    task_dims,
    task_list,
)

KIND = "truth"
VERSION = 1  # part of every config: bump when a task or an estimator changes meaning


def battery_configs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """One config per applicable (task, estimator, seed)."""
    configs = []
    for task in task_list(params):
        for estimator in params["estimators"]:
            if not applicable(task, estimator, params):
                continue
            est_params: dict[str, Any] = {}
            if estimator in ("smile", "mine", "infonce"):
                est_params = {"neural": params["neural"]}
            elif estimator in (*PROJECT, "label MINE"):
                est_params = {"steps": params["mine_steps"], "batch_size": params["mine_batch"]}
                if estimator.endswith(" es"):
                    est_params.update(params["early_stopping"])
                if estimator in ("AA-MINE penalty", "label MINE"):
                    est_params["hidden"] = list(TRAINING_CRITIC_HIDDEN)
            for seed in params["seeds"]:
                configs.append(
                    {
                        "version": VERSION,
                        **task,
                        "n": params["n"],
                        "estimator": estimator,
                        "estimator_params": est_params,
                        "seed": seed,
                    }
                )
    return configs


def config_dataset(config: dict[str, Any]) -> str:
    """The data set a battery config reads: "mnist" for the MNIST-layer task, else "synthetic"."""
    return "mnist" if config.get("family") == "mnist" else "synthetic"


def record_runner(
    params: dict[str, Any], device: str | torch.device = "cpu", data_dir: str | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The function that computes one battery record from its config (for
    :func:`ibcore.core.results.run_all`); it keeps one task's samples between calls."""
    dev = resolve_device(device)
    cache: dict[tuple, dict] = {}

    def run_one(config: dict[str, Any]) -> dict[str, Any]:
        key = (config["task"], config["n"], config["seed"])
        if key not in cache:
            cache.clear()  # configs come grouped by task; keep one task's samples
            cache[key] = make_samples(config, config["n"], config["seed"], data_dir)
        s = cache[key]
        out = run_estimator(config["estimator"], s, params, config["seed"], dev)
        metrics = {
            **out,
            "truth": s["truth"],
            "truth_low": s["truth_low"],
            "truth_high": s["truth_high"],
            "bias_pct": bias_pct(out["value"], s["truth_low"], s["truth_high"]),
        }
        if "truth_se" in s:
            metrics["truth_se"] = s["truth_se"]
        metrics["status"] = estimate_status(config, metrics)
        return {"metrics": metrics, "environment": environment(dev), "timings": {"wall": out["wall_time"]}}

    return run_one


def run_battery(
    params: dict[str, Any],
    results_dir: str | os.PathLike = "results/tiny",
    device: str | torch.device = "cpu",
    data_dir: str | None = None,
    progress: bool = False,
) -> list[dict]:
    """Run every (task, estimator, seed) of ``params`` not yet stored; return all their records.

    Records: ``<results_dir>/truth/<hash>.json`` with metrics ``value``, ``truth``,
    ``truth_low``, ``truth_high`` (``truth_se`` for label tasks), ``bias_pct``, ``wall_time``,
    ``cpu_time``, ``stop_step``, ``n_eval`` and ``status`` (:func:`estimate_status`).
    """
    runner = record_runner(params, device, data_dir)
    return run_all(results_dir, KIND, battery_configs(params), runner, progress=progress)


def load_battery(results_dir: str | os.PathLike, params: dict[str, Any] | None = None) -> list[dict]:
    """Stored truth records (only those of ``params``' configs when given)."""
    records = load_records(results_dir, KIND)
    if params is None:
        return records
    from ibcore.core.results import config_id

    wanted = {config_id(c) for c in battery_configs(params)}
    return [r for r in records if r["run_id"] in wanted]
