"""The parameters that define one training run, checked before any work starts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

from ibcore.core.data import SPECS, check_dataset_name, check_fraction

METHODS = ("ce", "ib")
#: The beta term while layer i trains (:mod:`ibcore.core.penalties`): "tied" is the default so that
#: records stored before the field existed keep their meaning and hash.
PENALTIES = ("aamine", "aamine_stopgrad", "tied", "pairwise_kl", "logdet", "weight_decay")
SIGMA_MODES = ("absolute", "layer_scaled")
#: New fields that ``to_dict`` omits at their default, so stored records keep their run id.
OMIT_AT_DEFAULT = {
    "penalty": "tied",
    "sigma_mode": "absolute",
    "critic_steps": 1,
    "val_size": 0,
    "oversample": False,
}
#: Fields that do not act when beta = 0 (no penalty) or for cross-entropy: dropped from
#: ``to_dict`` then, so the beta = 0 run is one record shared by every penalty.
PENALTY_ONLY = ("penalty", "critic_steps")
#: Fields that act only for layer-wise IB training: dropped from ``to_dict`` for "ce".
IB_ONLY = ("penalty", "critic_steps", "sigma_mode")


def training_set_size(dataset: str, fraction: float) -> int:
    """Images in the stratified ``fraction`` of the training set (see
    :func:`ibcore.core.data.stratified_subset`)."""
    spec = SPECS[dataset]
    if fraction == 1.0:
        return spec["n_train"]
    per_class = max(1, int(round(fraction * spec["n_train"] / spec["num_classes"])))
    return per_class * spec["num_classes"]


def check_seeds(seeds: Sequence[int], name: str = "seeds") -> list[int]:
    """``seeds`` as a list: non-empty, integers >= 0, no repeats (a repeat would count one run
    twice); else ValueError naming the parameter."""
    if isinstance(seeds, (str, bytes, int, float)) or seeds is None:
        raise ValueError(f"{name} must be a list of integers >= 0, e.g. [0, 1, 2]; got {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError(f"{name} must list at least one seed")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"{name} must hold integers >= 0, got {s!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"{name} = {seeds} repeats {repeated}: each seed may appear once")
    return seeds


@dataclass(frozen=True)
class TrainConfig:
    """One run of Table 1.

    ``method`` "ce" trains end to end with cross-entropy for ``steps`` steps; "ib" trains
    layer by layer, ``steps`` steps per layer, on I(Y;L_i) - beta I(X;L_i + eps) (Eq. 2;
    beta = 0 is the "I(Y;L_i) only" row), then post-trains a linear probe (Sec. 4).
    ``sigma`` is the standard deviation of eps. ``max_layers`` > 0 trains only the first
    layers by IB (the probe then reads layer ``max_layers``). ``measure_steps`` > 0 measures
    the information plane of a cross-entropy net at its checkpoints with the estimators of
    IB training, each trained for that many steps on the frozen net.

    ``penalty`` names the estimate of I(X;L_i+eps) the layer is penalised with (see
    :mod:`ibcore.core.penalties`); ``critic_steps`` is the number of updates of the penalty's own
    statistics network per layer update ("aamine" and "aamine_stopgrad" only).
    ``sigma_mode`` "layer_scaled" makes the noise std of layer i ``sigma`` times the median
    nearest-neighbour distance of L_i on (up to) the first 2048 training images when layer i
    starts (IB only; cross-entropy ignores it). ``val_size`` > 0 holds out that many training
    images as a validation split (:func:`ibcore.core.data.with_validation`): probes then report
    validation accuracy and draw from their own generators, so probing never changes training.
    Batches are drawn with replacement; a ``batch_size`` above the training set's size is
    refused unless ``oversample`` is True.
    """

    dataset: str = "mnist"
    fraction: float = 1.0
    method: str = "ib"
    beta: float = 0.0
    sigma: float = 0.5
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    critic_lr: float = 1e-3
    critic_hidden: tuple[int, ...] = (256,)
    probe_steps: int = 2000
    probe_lr: float = 1e-2
    checkpoints: int = 5
    checkpoint_probe_steps: int = 300
    measure_steps: int = 0
    max_layers: int = 0
    widths: tuple[int, ...] = (784, 512, 256, 10)
    channels: tuple[int, ...] = (32, 64, 128)
    seed: int = 0
    penalty: str = "tied"
    sigma_mode: str = "absolute"
    critic_steps: int = 1
    val_size: int = 0
    oversample: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    @property
    def arch(self) -> str:
        return "mlp" if self.dataset == "mnist" else "convnet"

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        check_dataset_name(self.dataset)
        check_fraction(self.fraction)
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(
                f"sigma (noise std) must be a finite number > 0, got {self.sigma!r}: "
                "with no noise I(X; L + eps) is infinite"
            )
        for name in ("steps", "probe_steps", "batch_size", "checkpoints"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (marginal pairs are shuffles), got {self.batch_size}")
        if not isinstance(self.oversample, bool):
            raise ValueError(f"oversample must be True or False, got {self.oversample!r}")
        n_train = training_set_size(self.dataset, self.fraction)
        if self.batch_size > n_train and not self.oversample:
            raise ValueError(
                f"batch_size={self.batch_size} exceeds the {n_train} training images of {self.dataset} "
                f"at fraction {self.fraction}; lower batch_size, raise fraction, or set oversample=True "
                "to draw batches larger than the training set"
            )
        for name in ("checkpoint_probe_steps", "measure_steps", "max_layers"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("lr", "critic_lr", "probe_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; choose one of {PENALTIES}")
        if self.sigma_mode not in SIGMA_MODES:
            raise ValueError(f"unknown sigma_mode {self.sigma_mode!r}; choose one of {SIGMA_MODES}")
        if not (isinstance(self.critic_steps, int) and self.critic_steps > 0):
            raise ValueError(f"critic_steps must be a positive integer, got {self.critic_steps!r}")
        if self.critic_steps > 1 and self.penalty not in ("aamine", "aamine_stopgrad"):
            raise ValueError(
                f"critic_steps={self.critic_steps} acts only for penalty 'aamine' or 'aamine_stopgrad', "
                f"not {self.penalty!r}; leave it at 1"
            )
        if not (isinstance(self.val_size, int) and self.val_size >= 0):
            raise ValueError(f"val_size must be an integer >= 0, got {self.val_size!r}")
        n_layers = len(self.widths) - 1 if self.arch == "mlp" else len(self.channels) + 1
        if self.max_layers > n_layers:
            raise ValueError(f"max_layers={self.max_layers} but the {self.arch} has {n_layers} layers")
        if self.dataset == "mnist" and self.widths[0] != 784:
            raise ValueError(f"widths must start with 784 for MNIST, got {self.widths}")
        if self.widths[-1] < SPECS[self.dataset]["num_classes"] and self.method == "ce":
            raise ValueError("the last width must be at least the number of classes for cross-entropy")

    def to_dict(self) -> dict:
        """The JSON form; fields that do not act for this run's architecture are dropped, and so
        are the fields of :data:`OMIT_AT_DEFAULT` at their defaults (records stored before they
        existed keep their hash), ``penalty`` / ``critic_steps`` at beta = 0 (they do not act
        there, so the beta = 0 run is shared by every penalty) and ``penalty`` / ``critic_steps`` /
        ``sigma_mode`` for cross-entropy (which measures, if at all, with the absolute sigma)."""
        d = asdict(self)
        d.pop("channels" if self.arch == "mlp" else "widths")
        d["critic_hidden"] = list(d["critic_hidden"])
        if "widths" in d:
            d["widths"] = list(d["widths"])
        if "channels" in d:
            d["channels"] = list(d["channels"])
        if not d["extra"]:
            d.pop("extra")
        for name, default in OMIT_AT_DEFAULT.items():
            if (
                d[name] == default
                or (name in PENALTY_ONLY and self.beta == 0)
                or (name in IB_ONLY and self.method != "ib")
            ):
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
