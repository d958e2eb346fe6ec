"""Figure 1's parameters: one configuration per (panel, estimator, sigma^2, seed), checked before
any work (:func:`figure1_configs`). The panels are described in :mod:`ibcore.experiments.figure1`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ibcore.core.config import TrainConfig
from ibcore.core.data import SPECS

KIND = "figure1"
#: Bumped whenever a code change alters the numbers, so that old records are not reused.
VERSION = 1
PANELS = ("a", "b")
#: The estimators of the paper's figure (the default of :func:`figure1_configs`).
ESTIMATORS = ("mine", "aamine")
#: The forms of AA-MINE that IB training uses, run in panel b when ``training_critic`` is set:
#: "tied", the tied mixture critic whose value every training record stores as I_x
#: (:class:`ibcore.core.estimators.TiedAAMINE`), and "aamine_penalty", the critic of the paper's
#: penalty "aamine" with its own trained copy of the layer (:class:`ibcore.core.estimators.PenaltyAAMINE`).
TRAINING_CRITICS = ("tied", "aamine_penalty")
ALL_ESTIMATORS = ("mine", "aamine", *TRAINING_CRITICS)
ESTIMATOR_LABELS = {
    "mine": "MINE",
    "aamine": "AA-MINE",
    "tied": "AA-MINE, tied critic (training's I_x)",
    "aamine_penalty": "AA-MINE, penalty critic (training's aamine)",
}
#: The penalty critic's hidden sizes: those of IB training (TrainConfig.critic_hidden).
PENALTY_HIDDEN = tuple(TrainConfig.__dataclass_fields__["critic_hidden"].default)
#: Early-stopping settings of :class:`ibcore.core.estimators.NeuralEstimator` and their defaults.
EARLY_STOPPING_DEFAULTS = {"patience": None, "eval_every": 100, "min_steps": 200, "min_delta": 0.005}
MNIST_PIXELS = 784


# -- parameters ----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any) -> None:
    if not (_is_int(value) and value > 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_sigma2_grid(sigma2_grid: Sequence[float]) -> list[float]:
    if isinstance(sigma2_grid, (str, bytes, int, float)):
        raise ValueError(
            f"sigma2_grid must be a list of noise variances, e.g. [0, 0.01, 1]; got {sigma2_grid!r}"
        )
    grid = list(sigma2_grid)
    if not grid:
        raise ValueError(f"sigma2_grid must list at least one noise variance, got {sigma2_grid!r}")
    out = []
    for s2 in grid:
        if isinstance(s2, bool) or not isinstance(s2, (int, float)) or not math.isfinite(s2) or s2 < 0:
            raise ValueError(
                f"sigma2_grid holds {s2!r}: every noise variance sigma^2 must be a finite number >= 0"
            )
        out.append(float(s2))
    if len(set(out)) != len(out):
        raise ValueError(f"sigma2_grid holds repeated values: {grid}")
    return sorted(out)


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    if isinstance(seeds, (str, bytes, int, float)):
        raise ValueError(f"seeds must be a list of integers >= 0, e.g. [0, 1, 2]; got {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    for s in seeds:
        if not (_is_int(s) and s >= 0):
            raise ValueError(f"seeds must be integers >= 0, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds holds repeated values: {seeds}")
    return seeds


def _check_choice(name: str, values: Iterable[str], allowed: Sequence[str]) -> list[str]:
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise ValueError(f"{name} must list at least one of {allowed}")
    for v in values:
        if v not in allowed:
            raise ValueError(f"unknown {name[:-1]} {v!r}; choose from {list(allowed)}")
    return list(dict.fromkeys(values))


def _check_early_stopping(early_stopping: Any) -> dict[str, dict[str, Any]]:
    """``{estimator: {patience, eval_every, min_steps, min_delta}}`` with the defaults filled in."""
    if early_stopping is None:
        return {}
    if not isinstance(early_stopping, dict):
        raise ValueError(
            "early_stopping must map estimators to settings, e.g. {mine: {patience: 3}}; "
            f"got {early_stopping!r}"
        )
    out = {}
    for est, settings in early_stopping.items():
        if est not in ALL_ESTIMATORS:
            raise ValueError(f"early_stopping names unknown estimator {est!r}; choose from {ALL_ESTIMATORS}")
        if not isinstance(settings, dict) or set(settings) - set(EARLY_STOPPING_DEFAULTS):
            raise ValueError(
                f"early_stopping[{est!r}] must be a mapping with keys among {list(EARLY_STOPPING_DEFAULTS)}, "
                f"got {settings!r}"
            )
        full = {**EARLY_STOPPING_DEFAULTS, **settings}
        for name in ("patience", "eval_every"):
            _check_positive_int(f"early_stopping[{est!r}].{name}", full[name])
        if not (_is_int(full["min_steps"]) and full["min_steps"] >= 0):
            raise ValueError(
                f"early_stopping[{est!r}].min_steps must be an integer >= 0, got {full['min_steps']!r}"
            )
        delta = full["min_delta"]
        if (
            isinstance(delta, bool)
            or not isinstance(delta, (int, float))
            or not (math.isfinite(delta) and delta >= 0)
        ):
            raise ValueError(f"early_stopping[{est!r}].min_delta must be a finite number >= 0, got {delta!r}")
        out[est] = {**full, "min_delta": float(delta)}
    return out


def figure1_configs(
    *,
    sigma2_grid: Sequence[float],
    seeds: Iterable[int] = (0,),
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    hidden: Sequence[int] = (256, 256),
    holdout_fraction: float = 0.2,
    eval_shuffles: int = 10,
    copy_lr_factor: float = 0.0,
    panels: Iterable[str] = PANELS,
    estimators: Iterable[str] = ESTIMATORS,
    widths: Sequence[int] = (784, 256, 128, 64),
    n_samples: int = 10000,
    gaussian_dims: Sequence[int] = (8, 2),
    gaussian_samples: int = 20000,
    gaussian_gain: float = 1.0,
    gaussian_weight_seed: int = 1,
    training_critic: bool = False,
    early_stopping: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The configurations of Figure 1, one per (panel, estimator, sigma^2, seed).

    Raises ``ValueError`` naming the first bad parameter; nothing is computed. Panel "a" uses
    the first ``n_samples`` MNIST training images and an MLP of ``widths`` (784 inputs; the
    paper's net has 3 layers, ``len(widths) == 4``) whose weights are drawn with ``seed``.
    Panel "b" uses ``gaussian_samples`` draws (with ``seed``) of X ~ N(0, I_D) and the fixed
    layer W = ``gaussian_gain`` * G / sqrt(D), G a K x D standard normal matrix drawn with
    ``gaussian_weight_seed``, (D, K) = ``gaussian_dims``. ``copy_lr_factor`` is AA-MINE's
    learning-rate factor for its copy of the measured layers (0: frozen at F, which is the
    optimum here since the measured net does not change). ``training_critic`` adds panel-b
    configs of the :data:`TRAINING_CRITICS` (the forms of AA-MINE that IB training uses; the
    penalty critic with training's hidden sizes :data:`PENALTY_HIDDEN`).

    ``early_stopping`` maps estimators to early-stopping settings of
    :class:`ibcore.core.estimators.NeuralEstimator` (``patience`` required; ``eval_every``,
    ``min_steps``, ``min_delta`` default to :data:`EARLY_STOPPING_DEFAULTS`); ``steps`` stays the
    maximum. Only the configs of those estimators carry the key ``early_stopping``, so the others
    keep their hashes.
    """
    grid = _check_sigma2_grid(sigma2_grid)
    seeds = _check_seeds(seeds)
    panels = _check_choice("panels", panels, PANELS)
    estimators = _check_choice("estimators", estimators, ALL_ESTIMATORS)
    _check_positive_int("steps", steps)
    _check_positive_int("batch_size", batch_size)
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (marginal pairs are shuffles), got {batch_size}")
    _check_positive_int("eval_shuffles", eval_shuffles)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (isinstance(holdout_fraction, (int, float)) and 0 < holdout_fraction < 1):
        raise ValueError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction!r}")
    if not (
        isinstance(copy_lr_factor, (int, float)) and math.isfinite(copy_lr_factor) and copy_lr_factor >= 0
    ):
        raise ValueError(f"copy_lr_factor must be a finite number >= 0, got {copy_lr_factor!r}")
    hidden = [int(h) for h in hidden]
    if not hidden or any(h <= 0 for h in hidden):
        raise ValueError(f"hidden must list positive layer sizes, got {hidden}")

    def check_samples(name: str, n: int) -> None:
        _check_positive_int(name, n)
        n_train = int(n * (1 - holdout_fraction))
        if n_train < batch_size:
            raise ValueError(
                f"{name}={n} leaves {n_train} samples for training after the hold-out, fewer than "
                f"batch_size={batch_size}"
            )

    common = {
        "version": VERSION,
        "steps": steps,
        "batch_size": batch_size,
        "lr": float(lr),
        "hidden": hidden,
        "holdout_fraction": float(holdout_fraction),
        "eval_shuffles": eval_shuffles,
    }
    per_panel: dict[str, dict[str, Any]] = {}
    if "a" in panels:
        widths = [int(w) for w in widths]
        if len(widths) < 2 or any(w <= 0 for w in widths) or widths[0] != MNIST_PIXELS:
            raise ValueError(
                f"widths must start at {MNIST_PIXELS} (MNIST pixels) and list positive layer sizes, "
                f"e.g. [784, 256, 128, 64]; got {widths}"
            )
        check_samples("n_samples", n_samples)
        if n_samples > SPECS["mnist"]["n_train"]:
            raise ValueError(
                f"n_samples={n_samples} exceeds the {SPECS['mnist']['n_train']} MNIST training images"
            )
        per_panel["a"] = {
            "dataset": "mnist",
            "images": "first n_samples of the training set",
            "widths": widths,
            "n_samples": n_samples,
        }
    if "b" in panels:
        dims = [int(d) for d in gaussian_dims]
        if len(dims) != 2 or any(d <= 0 for d in dims):
            raise ValueError(
                f"gaussian_dims must be (input dim D, output dim K), both > 0; got {list(gaussian_dims)}"
            )
        check_samples("gaussian_samples", gaussian_samples)
        if not (
            isinstance(gaussian_gain, (int, float)) and math.isfinite(gaussian_gain) and gaussian_gain > 0
        ):
            raise ValueError(f"gaussian_gain must be a finite number > 0, got {gaussian_gain!r}")
        if not (_is_int(gaussian_weight_seed) and gaussian_weight_seed >= 0):
            raise ValueError(f"gaussian_weight_seed must be an integer >= 0, got {gaussian_weight_seed!r}")
        per_panel["b"] = {
            "gaussian_dims": dims,
            "gaussian_samples": gaussian_samples,
            "gaussian_gain": float(gaussian_gain),
            "gaussian_weight_seed": gaussian_weight_seed,
        }

    stopping = _check_early_stopping(early_stopping)
    if not isinstance(training_critic, bool):
        raise ValueError(f"training_critic must be true or false, got {training_critic!r}")
    configs = []
    for panel in panels:
        extra_estimators = []
        if training_critic and panel == "b":
            extra_estimators = [e for e in TRAINING_CRITICS if e not in estimators]
        for estimator in estimators + extra_estimators:
            extra: dict[str, Any] = {}
            if estimator == "aamine":
                extra = {"copy_lr_factor": float(copy_lr_factor)}
            elif estimator == "aamine_penalty":
                extra = {"hidden": list(PENALTY_HIDDEN)}
            if estimator in stopping:
                extra["early_stopping"] = stopping[estimator]
            for s2 in grid:
                for seed in seeds:
                    configs.append(
                        {
                            "panel": panel,
                            "estimator": estimator,
                            "sigma2": s2,
                            "seed": seed,
                            **common,
                            **extra,
                            **per_panel[panel],
                        }
                    )
    return configs
