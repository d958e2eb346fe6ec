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
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ibcore.core.estimators import AAMINE, MINE, LabelMINE, NeuralEstimator
from ibcore.core.mi import estimate_mi
from ibcore.core.penalties import make_penalty
from ibcore.core.results import environment, load_records, run_all
from ibcore.core.runtime import resolve_device
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

#: The project's estimator classes run with a fixed step budget (or early stopping: "es").
PROJECT = ("MINE", "AA-MINE", "AA-MINE frozen", "AA-MINE tied", "AA-MINE penalty", "MINE es", "AA-MINE es")
ESTIMATORS = (
    "smile",  # ibcore.estimate_mi methods
    "mine",
    "infonce",
    "ksg",
    *PROJECT,
    "label MINE",
    "torch-mist smile",  # peers
    "sklearn KSG",
    "sklearn classif",
)
#: Early stopping of "MINE es" / "AA-MINE es" (NeuralEstimator's patience, eval_every, min_steps).
EARLY_STOPPING = {"patience": 3, "eval_every": 100, "min_steps": 300}

#: Sizes: "tiny" for the tests (< 30 s on one CPU thread), "default" (minutes on a CPU),
#: "paper" (the full battery, for a GPU or a long CPU run).
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "n": 2000,
        "seeds": [0],
        "gauss": [{"d": 1, "mi": 1.0}, {"d": 1, "mi": 1.0, "map": "cube"}, {"d": 3, "mi": 2.0}],
        "linear": {"d_in": 4, "d_out": 3, "sigma2": [0.1]},
        "mnist": {"n_images": 200, "widths": [784, 16, 10], "train_steps": 20, "noise_ratio": [1.0]},
        "label": [{"d": 1, "sep": 1.0}],
        "estimators": [
            "smile",
            "ksg",
            "MINE",
            "AA-MINE",
            "AA-MINE tied",
            "AA-MINE penalty",
            "label MINE",
            "sklearn KSG",
            "sklearn classif",
        ],
        "neural": {"hidden": [64], "batch_size": 128, "max_steps": 300, "min_steps": 100, "eval_every": 50},
        "mine_steps": 300,
        "mine_batch": 128,
        "early_stopping": {"patience": 2, "eval_every": 50, "min_steps": 100},
        "ksg_max_dim": 12,
    },
    "default": {
        "n": 5000,
        "seeds": [0, 1],
        "gauss": [
            {"d": 1, "mi": 1.0},
            {"d": 1, "mi": 4.0},
            {"d": 5, "mi": 2.0},
            {"d": 5, "mi": 10.0},
            {"d": 1, "mi": 1.0, "map": "cube"},
            {"d": 5, "mi": 2.0, "map": "cube"},
        ],
        "linear": {"d_in": 10, "d_out": 5, "sigma2": [0.01, 1.0]},
        "mnist": {"n_images": 1000, "widths": [784, 64, 10], "train_steps": 200, "noise_ratio": [1.0]},
        "label": [{"d": 1, "sep": 1.0}, {"d": 10, "sep": 4.0}],
        "estimators": [
            "smile",
            "ksg",
            "MINE",
            "AA-MINE",
            "AA-MINE tied",
            "AA-MINE penalty",
            "MINE es",
            "AA-MINE es",
            "label MINE",
            "torch-mist smile",
            "sklearn KSG",
            "sklearn classif",
        ],
        "neural": {"max_steps": 2000},
        "mine_steps": 1000,
        "mine_batch": 256,
        "early_stopping": dict(EARLY_STOPPING),
        "ksg_max_dim": 15,
    },
    "paper": {
        "n": 10000,
        "seeds": [0, 1, 2],
        "gauss": [
            *({"d": d, "mi": m} for d in (1, 3, 5, 10) for m in (0.1, 1.0, 2.0, 4.0, 10.0)),
            *({"d": d, "mi": m, "map": "cube"} for d in (1, 3, 5) for m in (1.0, 2.0, 4.0)),
        ],
        "linear": {"d_in": 10, "d_out": 5, "sigma2": [0.001, 0.01, 0.1, 1.0], "map_sigma2": [0.1]},
        "mnist": {
            "n_images": 2000,
            "widths": [784, 256, 10],
            "train_steps": 500,
            "noise_ratio": [0.1, 0.3, 1.0, 3.0],
        },
        "label": [{"d": 1, "sep": 1.0}, {"d": 1, "sep": 2.0}, {"d": 5, "sep": 3.0}, {"d": 10, "sep": 4.0}],
        "estimators": list(ESTIMATORS),
        "neural": {},
        "mine_steps": 2000,
        "mine_batch": 256,
        "early_stopping": dict(EARLY_STOPPING),
        "ksg_max_dim": 20,
    },
}
#: Hidden layers of the critics training uses for I_y (LabelMINE) and the "aamine" penalty
#: (``TrainConfig.critic_hidden``).
TRAINING_CRITIC_HIDDEN = (256,)


def battery_params(profile: str = "tiny", **overrides: Any) -> dict[str, Any]:
    """The size parameters of ``profile`` ("tiny", "default", "paper") with ``overrides``."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not one of {sorted(PROFILES)}")
    params = copy.deepcopy(PROFILES[profile])
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"unknown battery parameters {sorted(unknown)}; known: {sorted(params)}")
    params.update(copy.deepcopy(overrides))
    bad = set(params["estimators"]) - set(ESTIMATORS)
    if bad:
        raise ValueError(f"unknown estimators {sorted(bad)}; choose from {ESTIMATORS}")
    return params


# -- tasks and estimators -------------------------------------------------------------------
def applicable(task: dict[str, Any], estimator: str, params: dict[str, Any]) -> bool:
    """Whether ``estimator`` runs on ``task``: label tasks take the label MINE and (1-D) the
    scikit-learn classif peer only; AA-MINE needs a known network and no map; the KSG peer is
    1-D only; KSG needs few dimensions; torch-mist must import."""
    dims = task_dims(task)
    if task["family"] == "label":
        return estimator == "label MINE" or (estimator == "sklearn classif" and dims[0] == 1)
    if estimator in ("label MINE", "sklearn classif"):
        return False
    if estimator.startswith("AA-MINE"):
        return task["family"] in ("linear", "mnist") and task.get("map") is None
    if estimator == "sklearn KSG":
        return dims == (1, 1)
    if estimator == "ksg":
        return sum(dims) <= params["ksg_max_dim"]
    if estimator == "torch-mist smile":
        return torch_mist_available()
    return True


def torch_mist_available() -> bool:
    """True when the optional peer torch-mist imports beside our torch."""
    try:
        import torch_mist  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means the peer is unavailable
        return False
    return True


# -- estimators ------------------------------------------------------------------------------
class PenaltyAAMINE(NeuralEstimator):
    """The critic of the paper's "aamine" penalty (:func:`ibcore.core.penalties.make_penalty`:
    an :class:`~ibcore.core.critics.ArchitectureAwareCritic` with its own copy of the layer,
    ``critic_hidden`` = (256,), the copy trained at the full learning rate) as an estimator of
    I(X; F(X) + eps): trained on batches with the moving-average DV gradient, its DV value
    evaluated on the held-out samples. Here F is fixed, so the copy starts at the optimum."""

    def __init__(self, network: nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network
        self.copy_lr_factor = 1.0  # as AAMinePenalty's optimizer

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        penalty = make_penalty("aamine", self.network, v[0].numel(), self.noise_std, self.hidden, self.lr)
        return penalty.critic


def project_estimator(
    estimator: str, s: dict[str, Any], params: dict[str, Any], seed: int, device: torch.device
) -> NeuralEstimator:
    """The project's estimator object named ``estimator`` (one of :data:`PROJECT`) for samples ``s``."""
    from ibcore.experiments.figure1 import TiedAAMINE

    kw: dict[str, Any] = dict(
        steps=params["mine_steps"], batch_size=params["mine_batch"], seed=seed, device=device
    )
    if "clean" in s and not s["mapped"]:
        kw["noise_std"] = s["noise_std"]
    if estimator.endswith(" es"):
        kw.update(params["early_stopping"])
    if estimator in ("MINE", "MINE es"):
        return MINE(**kw)
    if estimator == "AA-MINE tied":
        return TiedAAMINE(s["network"], **kw)
    if estimator == "AA-MINE penalty":
        return PenaltyAAMINE(s["network"], hidden=TRAINING_CRITIC_HIDDEN, **kw)
    return AAMINE(s["network"], copy_lr_factor=0.0 if estimator.endswith("frozen") else 0.1, **kw)


def run_estimator(
    estimator: str, s: dict[str, Any], params: dict[str, Any], seed: int, device: torch.device
) -> dict[str, Any]:
    """Run one estimator on one task's samples; returns value, wall and CPU time, stopping step, CI.

    ``cpu_time`` (process CPU seconds) is the time per estimate on an unshared core when torch
    runs one thread; ``wall_time`` also counts waiting for a shared CPU.
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict[str, Any] = {"stop_step": None, "ci_low": None, "ci_high": None}
    if estimator in ("smile", "mine", "infonce", "ksg"):
        opts = {} if estimator == "ksg" else {**params["neural"]}
        if "hidden" in opts:
            opts["hidden"] = tuple(opts["hidden"])
        dev = "cpu" if estimator == "ksg" else device
        est = estimate_mi(s["x"], s["y"], estimator, seed=seed, device=dev, **opts)
        out.update(
            value=est.value,
            stop_step=est.stop_step or None,
            ci_low=est.ci_low,
            ci_high=est.ci_high,
            n_eval=est.holdout_size,
        )
    elif estimator in PROJECT:
        x = torch.as_tensor(s["x"], dtype=torch.float32)
        if "clean" in s and not s["mapped"]:  # a layer: the estimator adds fresh noise itself
            v = torch.as_tensor(s["clean"], dtype=torch.float32)
        else:
            v = torch.as_tensor(s["y"], dtype=torch.float32)
        est = project_estimator(estimator, s, params, seed, device).estimate(x, v)
        out.update(value=est.value, stop_step=est.stop_step, n_eval=est.holdout_size)
    elif estimator == "label MINE":
        est = LabelMINE(
            num_classes=s["classes"],
            hidden=TRAINING_CRITIC_HIDDEN,
            steps=params["mine_steps"],
            batch_size=params["mine_batch"],
            seed=seed,
            device=device,
        ).estimate(torch.as_tensor(s["x"], dtype=torch.float32), torch.as_tensor(s["y"], dtype=torch.int64))
        out.update(value=est.value, stop_step=est.stop_step, n_eval=est.holdout_size)
    elif estimator == "torch-mist smile":
        from torch_mist import estimate_mi as tm_estimate_mi

        n = s["x"].shape[0]
        order = np.random.default_rng(seed).permutation(n)
        n_test = int(round(0.2 * n))
        te, tr = order[:n_test], order[n_test:]
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32).reshape(a.shape[0], -1)  # noqa: E731
        torch.manual_seed(seed)
        value = tm_estimate_mi(
            data=(as_t(s["x"][tr]), as_t(s["y"][tr])),
            test_data=(as_t(s["x"][te]), as_t(s["y"][te])),
            estimator="smile",
            hidden_dims=[128],
            verbose=False,
            logger=False,
            device=str(device),
        )
        out.update(value=float(value), n_eval=n_test)
    elif estimator == "sklearn KSG":
        from sklearn.feature_selection import mutual_info_regression

        value = mutual_info_regression(
            s["x"].reshape(-1, 1), s["y"].reshape(-1), n_neighbors=3, random_state=seed
        )[0]
        out.update(value=float(value), n_eval=s["x"].shape[0])
    elif estimator == "sklearn classif":
        from sklearn.feature_selection import mutual_info_classif

        value = mutual_info_classif(
            s["x"].reshape(-1, 1), s["y"], discrete_features=False, n_neighbors=3, random_state=seed
        )[0]
        out.update(value=float(value), n_eval=s["x"].shape[0])
    else:
        raise ValueError(f"unknown estimator {estimator!r}; choose from {ESTIMATORS}")
    out["wall_time"] = time.perf_counter() - t0
    out["cpu_time"] = time.process_time() - c0
    return out


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


def notebook_battery_params(params: dict[str, Any]) -> dict[str, Any]:
    """The battery parameters of the truth notebook's parameters: the size ``battery`` (else the
    profile's name when it is a battery size, else "tiny") with the ``n``, ``seeds`` and
    ``estimators`` overrides that are set."""
    overrides = {k: params[k] for k in ("n", "seeds", "estimators") if params.get(k) is not None}
    profile = params.get("profile", "tiny")
    size = params.get("battery") or (profile if profile in ("tiny", "default", "paper") else "tiny")
    return battery_params(size, **overrides)


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
