"""The known-truth battery's parameters (:mod:`ibcore.experiments.truth`): its estimators, the
sizes "tiny", "default" and "paper", and the battery parameters of the truth notebook."""

from __future__ import annotations

import copy
from typing import Any

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


def notebook_battery_params(params: dict[str, Any]) -> dict[str, Any]:
    """The battery parameters of the truth notebook's parameters: the size ``battery`` (else the
    profile's name when it is a battery size, else "tiny") with the ``n``, ``seeds`` and
    ``estimators`` overrides that are set."""
    overrides = {k: params[k] for k in ("n", "seeds", "estimators") if params.get(k) is not None}
    profile = params.get("profile", "tiny")
    size = params.get("battery") or (profile if profile in ("tiny", "default", "paper") else "tiny")
    return battery_params(size, **overrides)
