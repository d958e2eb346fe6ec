"""The known-truth battery's estimator runners (:mod:`ibcore.experiments.truth`): which estimator
runs on which task, the project's estimator objects and one estimate with its value, times,
stopping step and interval."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ibcore.core.estimators import AAMINE, MINE, LabelMINE, NeuralEstimator
from ibcore.core.mi import estimate_mi
from ibcore.core.penalties import make_penalty
from ibcore.experiments.truth_params import ESTIMATORS, PROJECT, TRAINING_CRITIC_HIDDEN
from ibcore.experiments.truth_tasks import task_dims


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
