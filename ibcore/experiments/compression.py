"""Does compression help? The study of issue 9: each penalty on I(X; L_i + eps), chosen on
validation, against beta = 0 on the same seeds.

Two stages, both declared from the profile's parameters:

1. *Selection.* For every penalty, every beta of its grid and every noise setting, layer-by-layer
   IB runs on ``selection_seeds``, plus the beta = 0 baseline on the same seeds. Each penalty's
   (beta, noise) is the one with the highest mean **validation** accuracy (never test).
2. *Confirmation.* The chosen setting of each penalty, the beta = 0 baseline and end-to-end
   cross-entropy on all ``seeds``. Runs with the same seed share initialisation, subset and
   batches, so each comparison is a paired difference (:mod:`ibcore.core.stats`).
3. *Transfer* (optional ``transfer`` parameter). The paper's penalty and the best control (the
   control arm of highest selection validation accuracy), each at its setting chosen in stage 1,
   with beta = 0 and cross-entropy, on another cell (e.g. MNIST 100 %) and its own seeds.

The confirmation runs of a penalty are declared only once its selection runs are all stored;
:func:`configs_from_params` therefore grows as records arrive, and callers run it until it
declares nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ibcore.core.config import TrainConfig
from ibcore.core.results import config_id

KIND = "compression"

#: Penalties of the study, in the order the page shows them; the first is the paper's.
PENALTIES = ("aamine", "aamine_stopgrad", "tied", "pairwise_kl", "logdet", "weight_decay")
#: TrainConfig fields the study's parameters may set for every run.
TRAIN_PARAMS = (
    "dataset",
    "fraction",
    "steps",
    "batch_size",
    "lr",
    "critic_lr",
    "probe_steps",
    "checkpoints",
    "checkpoint_probe_steps",
    "val_size",
    "widths",
    "critic_hidden",
)
NOISE_KEYS = ("sigma", "sigma_mode")


def _base(params: dict[str, Any]) -> TrainConfig:
    unknown = set(params) - {
        *TRAIN_PARAMS,
        "penalties",
        "noise",
        "selection_seeds",
        "seeds",
        "critic_steps",
        "ce_steps",
        "profile",
        "results_dir",
        "device",
        "data_dir",
        "run_missing",
        "transfer",
    }
    if unknown:
        raise ValueError(f"unknown compression parameter(s) {sorted(unknown)}")
    if not params.get("val_size"):
        raise ValueError("the compression study selects on a validation split: set val_size > 0")
    return TrainConfig(method="ib", **{k: params[k] for k in TRAIN_PARAMS if params.get(k) is not None})


def _seeds(params: dict[str, Any], key: str) -> list[int]:
    seeds = list(params.get(key) or [])
    if not seeds:
        raise ValueError(f"the compression study needs a non-empty {key!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{key} has duplicates: {seeds}")
    return seeds


def _first_noise(params: dict[str, Any]) -> dict[str, Any]:
    noises = params.get("noise") or [{"sigma": 1.0, "sigma_mode": "absolute"}]
    return dict(noises[0])


#: Keys of an arm given as a mapping: its penalty, betas, and what it changes for its runs.
ARM_KEYS = ("penalty", "betas", "noise", "lr", "critic_steps")


def arms(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The study's arms by name. ``penalties`` maps a name to a list of betas (the arm of that
    penalty, with ``critic_steps[name]`` and the shared ``noise`` settings) or to a mapping
    {penalty, betas, noise?, lr?, critic_steps?} (a variant of a penalty, e.g. the paper's
    AA-MINE made stable by more critic steps and a lower layer learning rate)."""
    out: dict[str, dict[str, Any]] = {}
    noises = params.get("noise") or [_first_noise(params)]
    for name, spec in (params.get("penalties") or {}).items():
        if not isinstance(spec, dict):
            spec = {"penalty": name, "betas": spec}
        unknown = set(spec) - set(ARM_KEYS)
        if unknown:
            raise ValueError(f"arm {name!r}: unknown key(s) {sorted(unknown)}; use {ARM_KEYS}")
        penalty = spec.get("penalty", name)
        if penalty not in PENALTIES:
            raise ValueError(f"arm {name!r}: unknown penalty {penalty!r}; choose from {PENALTIES}")
        arm_noise = spec.get("noise") or noises
        out[name] = {
            "penalty": penalty,
            "betas": [float(b) for b in spec.get("betas") or []],
            "noise": arm_noise[:1] if penalty == "weight_decay" else arm_noise,  # sigma unused
            "critic_steps": spec.get("critic_steps", (params.get("critic_steps") or {}).get(name, 1)),
            "overrides": {"lr": spec["lr"]} if "lr" in spec else {},
        }
        for k in out[name]["noise"]:
            if set(k) - set(NOISE_KEYS):
                raise ValueError(f"arm {name!r}: unknown noise key(s) {sorted(set(k) - set(NOISE_KEYS))}")
    return out


def baseline_config(params: dict[str, Any], seed: int, arm: dict | None = None) -> TrainConfig:
    """beta = 0 (the I(Y;L_i)-only row) with the arm's learning rate: the same run whatever the
    penalty, stored once per learning rate; its information measured with the first noise
    setting."""
    overrides = arm["overrides"] if arm else {}
    return replace(_base(params), beta=0.0, seed=seed, **_first_noise(params), **overrides)


def ce_config(params: dict[str, Any], seed: int) -> TrainConfig:
    """End-to-end cross-entropy on the same split and seed."""
    base = _base(params)
    steps = params.get("ce_steps") or base.steps * (len(base.widths) - 1)
    return replace(base, method="ce", steps=steps, seed=seed, sigma=_first_noise(params)["sigma"])


def penalty_config(params: dict[str, Any], arm: dict, beta: float, noise: dict, seed: int) -> TrainConfig:
    """One IB run of ``arm`` at ``beta`` with the noise setting ``noise`` ({sigma, sigma_mode})."""
    if not beta > 0:
        raise ValueError(f"penalty betas must be > 0 (beta = 0 is the shared baseline), got {beta}")
    return replace(
        _base(params),
        penalty=arm["penalty"],
        beta=float(beta),
        critic_steps=arm["critic_steps"],
        seed=seed,
        **noise,
        **arm["overrides"],
    )


def grid(params: dict[str, Any]) -> list[tuple[str, float, dict]]:
    """(arm name, beta, noise) of every selection setting."""
    return [
        (name, beta, dict(noise))
        for name, arm in arms(params).items()
        for beta in arm["betas"]
        for noise in arm["noise"]
    ]


def selection_configs(params: dict[str, Any]) -> list[TrainConfig]:
    """Stage 1: every setting of :func:`grid` and each arm's baseline on ``selection_seeds``."""
    seeds = _seeds(params, "selection_seeds")
    all_arms = arms(params)
    configs = [baseline_config(params, s, arm) for arm in all_arms.values() for s in seeds]
    for name, beta, noise in grid(params):
        configs += [penalty_config(params, all_arms[name], beta, noise, s) for s in seeds]
    return configs


def _by_id(records: Iterable[dict]) -> dict[str, dict]:
    return {config_id(r["config"]): r for r in records}


def _val(record: dict | None) -> float | None:
    if record is None or record.get("status") != "complete":
        return None
    return record["metrics"].get("val_accuracy")


def choices(params: dict[str, Any], records: Iterable[dict]) -> dict[str, dict[str, Any]]:
    """Per arm whose selection runs are all stored: the (beta, noise) of the highest mean
    validation accuracy over ``selection_seeds`` (diverged runs count as failures: a setting
    with one is not chosen), with every setting's mean, for the page."""
    stored = _by_id(records)
    seeds = _seeds(params, "selection_seeds")
    out: dict[str, dict[str, Any]] = {}
    for name, arm in arms(params).items():
        table = []
        complete = True
        for beta in arm["betas"]:
            for noise in arm["noise"]:
                recs = [
                    stored.get(config_id(penalty_config(params, arm, beta, noise, s).to_dict()))
                    for s in seeds
                ]
                if any(r is None for r in recs):
                    complete = False
                    continue
                vals = [_val(r) for r in recs]
                diverged = any(v is None for v in vals)
                mean = None if diverged else sum(vals) / len(vals)
                table.append({"beta": beta, **noise, "val_accuracy": mean, "diverged": diverged})
        if not complete or not table:
            continue
        valid = [t for t in table if t["val_accuracy"] is not None]
        best = max(valid, key=lambda t: t["val_accuracy"]) if valid else None
        out[name] = {"best": best, "settings": table, "arm": arm}
    return out


def _chosen_configs(params: dict[str, Any], choice: dict, seeds: Sequence[int]) -> list[TrainConfig]:
    best = choice["best"]
    noise = {k: best[k] for k in NOISE_KEYS if k in best}
    return [penalty_config(params, choice["arm"], best["beta"], noise, s) for s in seeds]


def confirmation_configs(params: dict[str, Any], records: Iterable[dict]) -> list[TrainConfig]:
    """Stage 2: cross-entropy and every arm's baseline on all ``seeds``, and each chosen setting."""
    seeds = _seeds(params, "seeds")
    configs = [ce_config(params, s) for s in seeds]
    configs += [baseline_config(params, s, arm) for arm in arms(params).values() for s in seeds]
    for choice in choices(params, records).values():
        if choice["best"] is not None:
            configs += _chosen_configs(params, choice, seeds)
    return configs


def configs_from_params(params: dict[str, Any], records: Iterable[dict] = ()) -> list[TrainConfig]:
    """Every run the study declares given the records stored so far, without repeats."""
    records = list(records)
    seen: dict[str, TrainConfig] = {}
    for c in (
        selection_configs(params) + confirmation_configs(params, records) + transfer_configs(params, records)
    ):
        seen.setdefault(config_id(c.to_dict()), c)
    return list(seen.values())


def paired_rows(params: dict[str, Any], records: Iterable[dict]) -> list[dict[str, Any]]:
    """One row per penalty (and cross-entropy): the chosen setting, test accuracy over the
    seeds, and the paired difference of test accuracy to beta = 0 with its 95 % interval and
    verdict (holds / does not hold / inconclusive)."""
    records = list(records)
    return _paired(params, records, choices(params, records))


def _paired(params: dict[str, Any], records: list[dict], chosen: dict[str, dict]) -> list[dict[str, Any]]:
    """Rows of :func:`paired_rows` for the arms ``chosen`` (name -> choice), with the runs
    declared from ``params``."""
    from ibcore.core.stats import paired_difference

    stored = _by_id(records)
    seeds = _seeds(params, "seeds")

    def test_acc(config: TrainConfig) -> float | None:
        r = stored.get(config_id(config.to_dict()))
        return None if r is None or r.get("status") != "complete" else 100 * r["metrics"]["test_accuracy"]

    rows = []
    candidates: list[tuple[str, dict | None, list[TrainConfig], list[TrainConfig]]] = [
        (
            "cross-entropy",
            None,
            [ce_config(params, s) for s in seeds],
            [baseline_config(params, s) for s in seeds],
        )
    ]
    for name, choice in chosen.items():
        if choice["best"] is None:
            rows.append({"penalty": name, "verdict": "inconclusive", "reason": "every setting diverged"})
            continue
        baselines = [baseline_config(params, s, choice["arm"]) for s in seeds]
        candidates.append((name, choice["best"], _chosen_configs(params, choice, seeds), baselines))
    for name, best, configs, baselines in candidates:
        base = {c.seed: test_acc(c) for c in baselines}
        acc = {c.seed: test_acc(c) for c in configs}
        pairs = [(acc[s], base[s]) for s in seeds if acc[s] is not None and base[s] is not None]
        diff = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
        rows.append(
            {
                "penalty": name,
                "lr": configs[0].lr if best is not None else None,
                "critic_steps": configs[0].critic_steps if best is not None else None,
                "beta": None if best is None else best["beta"],
                "sigma": None if best is None else best["sigma"],
                "sigma_mode": None if best is None else best["sigma_mode"],
                "val_accuracy": None if best is None else best["val_accuracy"],
                "n": len(pairs),
                "test_accuracy": [a for a, _ in pairs],
                "baseline_accuracy": [b for _, b in pairs],
                "mean": diff["mean"],
                "low": diff["ci_low"],
                "high": diff["ci_high"],
                "verdict": diff["verdict"],
            }
        )
    return rows


def missing(params: dict[str, Any], records: Sequence[dict]) -> list[TrainConfig]:
    """Declared runs with no stored record (complete or diverged)."""
    stored = _by_id(records)
    return [c for c in configs_from_params(params, records) if config_id(c.to_dict()) not in stored]


def baseline_validation(params: dict[str, Any], records: Iterable[dict], arm: dict) -> float | None:
    """Mean validation accuracy of ``arm``'s beta = 0 baseline over ``selection_seeds`` (None
    while any is missing)."""
    stored = _by_id(records)
    vals = [
        _val(stored.get(config_id(baseline_config(params, s, arm).to_dict())))
        for s in _seeds(params, "selection_seeds")
    ]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


#: Arms that are controls (penalties that do not hinge on one neural estimator, issue 9 item 2).
CONTROLS = ("pairwise_kl", "logdet", "weight_decay")
#: Keys of the ``transfer`` parameter.
TRANSFER_KEYS = ("cell", "seeds", "arms")


def transfer_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The study's parameters on the transfer cell (``transfer.cell`` overrides the training
    parameters, ``transfer.seeds`` the seeds), or None without a ``transfer`` parameter."""
    spec = params.get("transfer")
    if not spec:
        return None
    unknown = set(spec) - set(TRANSFER_KEYS)
    if unknown:
        raise ValueError(f"transfer: unknown key(s) {sorted(unknown)}; use {TRANSFER_KEYS}")
    cell = dict(spec.get("cell") or {})
    bad = set(cell) - set(TRAIN_PARAMS) - {"ce_steps"}
    if bad:
        raise ValueError(f"transfer.cell: unknown key(s) {sorted(bad)}; use {TRAIN_PARAMS + ('ce_steps',)}")
    out = {**params, **cell, "seeds": list(spec.get("seeds") or params.get("seeds") or [])}
    out.pop("transfer")
    _seeds(out, "seeds")
    return out


def transfer_arms(params: dict[str, Any], records: Iterable[dict]) -> dict[str, dict[str, Any]]:
    """The arms carried to the transfer cell with their stage-1 choice: names in
    ``transfer.arms``, where ``best_control`` stands for the control arm (one of
    :data:`CONTROLS`) of highest selection validation accuracy. Empty until stage 1 is stored."""
    spec = params.get("transfer") or {}
    chosen = {k: v for k, v in choices(params, records).items() if v["best"] is not None}
    out: dict[str, dict[str, Any]] = {}
    for name in spec.get("arms") or ["aamine", "best_control"]:
        if name == "best_control":
            controls = {k: v for k, v in chosen.items() if v["arm"]["penalty"] in CONTROLS}
            if len(controls) < sum(1 for a in arms(params).values() if a["penalty"] in CONTROLS):
                continue  # not every control's selection is stored yet
            if controls:
                best = max(controls, key=lambda k: controls[k]["best"]["val_accuracy"])
                out[best] = controls[best]
        elif name not in arms(params):
            raise ValueError(f"transfer.arms: {name!r} is not an arm of the study ({sorted(arms(params))})")
        elif name in chosen:
            out[name] = chosen[name]
    return out


def transfer_configs(params: dict[str, Any], records: Iterable[dict]) -> list[TrainConfig]:
    """Stage 3: cross-entropy, beta = 0 and each carried arm's chosen setting on the transfer
    cell, on its seeds (nothing without a ``transfer`` parameter)."""
    cell = transfer_params(params)
    if cell is None:
        return []
    seeds = _seeds(cell, "seeds")
    carried = transfer_arms(params, records)
    configs = [ce_config(cell, s) for s in seeds]
    for choice in carried.values():
        configs += [baseline_config(cell, s, choice["arm"]) for s in seeds]
        configs += _chosen_configs(cell, choice, seeds)
    return configs


def transfer_rows(params: dict[str, Any], records: Iterable[dict]) -> list[dict[str, Any]]:
    """:func:`paired_rows` of the transfer cell: each carried arm at its stage-1 setting, paired
    against beta = 0 on the transfer cell's seeds (empty without a ``transfer`` parameter)."""
    cell = transfer_params(params)
    if cell is None:
        return []
    records = list(records)
    return _paired(cell, records, transfer_arms(params, records))
