"""Measurements of a frozen net at a checkpoint: the information plane (I(X; L_i + eps),
I(Y; L_i)) with the statistics networks of IB training (Eq. 6), the exact bounds of
I(X; L_i + eps) for X uniform over the evaluation samples, and I(Y; L_i) on held-out samples."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ibcore.core.bounds import mixture_mi_bounds
from ibcore.core.config import TrainConfig
from ibcore.core.critics import TiedMixtureCritic
from ibcore.core.data import Dataset
from ibcore.core.dv import dv_bound
from ibcore.core.estimators import LabelMINE, NeuralEstimator, marginal_permutation
from ibcore.core.ib_layer import LayerObjective
from ibcore.core.models import LayerStack

EVAL_SAMPLES = 2048


def measure_information(
    model: LayerStack, data: Dataset, config: TrainConfig, device: torch.device, gen: torch.Generator
) -> tuple[list[float], list[float]]:
    """Per layer (I(X; L_i + eps), I(Y; L_i)) of a frozen net, with the statistics networks of
    IB training (:class:`LayerObjective`) trained for ``config.measure_steps`` steps."""
    values = measure_layers(model, data, config, device, gen)
    return values["I_x"], values["I_y"]


def measure_layers(
    model: LayerStack,
    data: Dataset,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    heldout_gen: torch.Generator | None = None,
) -> dict[str, list[float | None]]:
    """:func:`measure_information` as lists ``I_x``, ``I_y`` (DV values, Eq. 6, on the first
    min(n_train, 2048) training samples) and, when ``heldout_gen`` is given and ``data`` holds a
    validation split, ``I_y_val``: the same label critic on the validation samples
    (:func:`heldout_label_information`; draws from ``heldout_gen`` only, so the other values
    are those of :func:`measure_information`). With ``config.extra[MEASURE_PATIENCE]`` set the
    values come from :func:`measure_layers_early`, seeded from ``gen``, with early stopping for
    I(Y; L_i) only: measured on MNIST 1 % (results/paper/info_plane_early_stopping.json), it moved
    I(X; L_1 + eps) beyond the spread over estimator seeds, and no I(Y; L_i)."""
    patience = config.extra.get(MEASURE_PATIENCE)
    if patience is not None:
        seed = int(torch.randint(2**31, (), generator=gen, device=gen.device))
        early = measure_layers_early(model, data, config, seed, int(patience), None, heldout_gen)
        return {k: v for k, v in early.items() if k in ("I_x", "I_y", "I_y_val")}
    eval_n = min(data.x_train.shape[0], EVAL_SAMPLES)
    reps = model.representations(data.x_train)
    val_reps = (
        model.representations(data.x_val) if heldout_gen is not None and data.x_val is not None else None
    )
    out: dict[str, list[float | None]] = {"I_x": [], "I_y": []}
    if val_reps is not None:
        out["I_y_val"] = []
    n = data.x_train.shape[0]
    for i, rep in enumerate(reps):
        torch.manual_seed(int(torch.randint(2**62, (), generator=gen, device=gen.device)))  # init from gen
        objective = LayerObjective(rep[0].numel(), data.num_classes, config, device)
        for _ in range(config.measure_steps):
            idx = torch.randint(n, (config.batch_size,), generator=gen, device=device)
            perm = marginal_permutation(config.batch_size, gen)
            objective.critic_step(rep[idx], data.y_train[idx], perm, config.sigma, gen)
        bx, by = objective.bounds(nn.Identity(), rep[:eval_n], data.y_train[:eval_n], config.sigma, gen)
        out["I_x"].append(bx)
        out["I_y"].append(by)
        if val_reps is not None:
            assert heldout_gen is not None
            out["I_y_val"].append(
                heldout_label_information(objective.critic_y, val_reps[i], data.y_val, heldout_gen)
            )
    return out


#: ``TrainConfig.extra`` key: early stopping of the measurement estimators (patience, in
#: evaluations every ``EARLY_EVAL_EVERY`` steps); absent = the fixed ``measure_steps`` budget.
MEASURE_PATIENCE = "measure_patience"
EARLY_EVAL_EVERY = 100
EARLY_MIN_STEPS = 200


class TiedMixtureScores(TiedMixtureCritic):
    """The tied mixture critic of IB training with the ``scores(u, v, perm)`` of a
    :class:`ibcore.core.estimators.NeuralEstimator` critic: u = L (clean), v = L + eps."""

    def scores(
        self, h: torch.Tensor, z: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scores_from_features(h, z, perm)


class TiedMixtureMINE(NeuralEstimator):
    """I(X; L + eps) of fixed layer outputs with the tied mixture critic (``estimate(l, l)``;
    ``noise_std`` = sigma adds eps to the second argument), DV value (Eq. 6) on held-out rows."""

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> nn.Module:
        return TiedMixtureScores(u[0].numel())


def measure_layers_early(
    model: LayerStack,
    data: Dataset,
    config: TrainConfig,
    seed: int,
    patience_y: int | None,
    patience_x: int | None,
    heldout_gen: torch.Generator | None = None,
) -> dict[str, list]:
    """Per layer I(X; L_i + eps) and I(Y; L_i) of a frozen net with the estimators of
    :mod:`ibcore.core.estimators` (:class:`TiedMixtureMINE`, :class:`LabelMINE`: the critics of IB
    training, trained on 80 % of the first min(n_train, 2048) training samples, valued on the
    rest), at most ``config.measure_steps`` steps each, with early stopping on a held-out half when
    ``patience_y`` (I(Y; L_i)) or ``patience_x`` (I(X; L_i + eps)) is set (every
    :data:`EARLY_EVAL_EVERY` steps, not before :data:`EARLY_MIN_STEPS`).
    Returns lists ``I_x``, ``I_y``, ``stop_x``, ``stop_y`` (the steps training stopped at) and, with
    ``heldout_gen`` and a validation split, ``I_y_val`` (:func:`heldout_label_information`)."""
    eval_n = min(data.x_train.shape[0], EVAL_SAMPLES)
    reps = model.representations(data.x_train[:eval_n])
    y = data.y_train[:eval_n]
    common = dict(
        steps=config.measure_steps,
        batch_size=min(config.batch_size, int(eval_n * 0.8)),
        lr=config.critic_lr,
        device=y.device,
        eval_every=EARLY_EVAL_EVERY,
        min_steps=EARLY_MIN_STEPS,
    )
    val_reps = (
        model.representations(data.x_val) if heldout_gen is not None and data.x_val is not None else None
    )
    out: dict[str, list] = {"I_x": [], "I_y": [], "stop_x": [], "stop_y": []}
    if val_reps is not None:
        out["I_y_val"] = []
    for i, rep in enumerate(reps):
        key = seed * 1000 + i
        ex = TiedMixtureMINE(noise_std=config.sigma, seed=key, patience=patience_x, **common).estimate(
            rep, rep
        )
        label_mine = LabelMINE(
            hidden=config.critic_hidden, num_classes=data.num_classes, seed=key, patience=patience_y, **common
        )
        ey = label_mine.estimate(rep, y)
        if val_reps is not None:
            assert heldout_gen is not None and label_mine.critic is not None
            out["I_y_val"].append(
                heldout_label_information(label_mine.critic, val_reps[i], data.y_val, heldout_gen)
            )
        out["I_x"].append(ex.value)
        out["I_y"].append(ey.value)
        out["stop_x"].append(ex.stop_step)
        out["stop_y"].append(ey.stop_step)
    return out


@torch.no_grad()
def heldout_label_information(
    critic_y: nn.Module, l_val: torch.Tensor, y_val: torch.Tensor, gen: torch.Generator
) -> float | None:
    """The DV value (Eq. 6) of the label critic T(l, y) = f(l)_y of I(Y; L_i), trained on training
    samples, on held-out pairs (l_val, y_val), marginals from one fixed-point-free shuffle drawn
    from ``gen``: a lower bound on I(Y; L_i) up to sampling error, never clipped (it may fall below 0
    or above H(Y)); None when not finite."""
    perm = marginal_permutation(l_val.shape[0], gen)
    value = float(dv_bound(*critic_y.scores(l_val, y_val, perm)))
    return value if math.isfinite(value) else None


def probe_lower_bound(h_y: float, probe_ce: float | None) -> float | None:
    """H(Y) - CE of a probe on held-out samples (nats): the variational lower bound on I(Y; L)
    (see :func:`ibcore.core.probes.label_entropy`), not clipped; None without a probe."""
    if probe_ce is None or not math.isfinite(probe_ce):
        return None
    return h_y - probe_ce


def exact_bounds(features: torch.Tensor, sigma: float) -> tuple[float, float]:
    """(Bhattacharyya lower, pairwise-KL upper) bound on I(X; L + eps), X uniform over the rows of
    ``features`` (the layer output on the evaluation samples), eps ~ N(0, sigma^2 I); no RNG."""
    return mixture_mi_bounds(features.flatten(1), sigma**2)


def append_aligned(curve: dict, key: str, value: Any) -> None:
    """Append ``value`` to ``curve[key]``, a list aligned with ``curve["step"]`` whose last entry is
    the checkpoint just recorded (None-padded for a run resumed from a checkpoint written before
    the key was stored)."""
    values = curve.setdefault(key, [])
    values.extend([None] * (len(curve["step"]) - 1 - len(values)))
    values.append(value)


def append_bounds(curve: dict, lower: Any, upper: Any) -> None:
    """Append the exact bounds of the checkpoint just recorded in ``curve`` (lists ``I_x_lower``,
    ``I_x_upper`` aligned with ``curve["step"]``; None-padded for a run resumed from a checkpoint
    written before the bounds were stored)."""
    append_aligned(curve, "I_x_lower", lower)
    append_aligned(curve, "I_x_upper", upper)
