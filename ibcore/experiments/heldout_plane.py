"""The held-out information plane (issue 10 item 3, issue 15 item 2): I(Y; L_i) of the label
critic on validation samples and the probe bound H(Y) - CE beside the training-sample values,
read from records of kind :data:`KIND`, and the measured effect of early stopping on the
information-plane estimators.

The runs (:func:`heldout_configs`) have a validation split, so each checkpoint of their records
holds, beside ``I_y`` (the label critic's DV value, Eq. 6, on the first min(n_train, 2048)
training samples), ``I_y_val`` (the same critic on the validation samples), ``probe_val_ce`` and
``I_y_probe_lower`` = H(Y) - CE of the checkpoint's linear probe on the validation samples, and
``H_y_val`` (:mod:`ibcore.core.train_ib`, :func:`ibcore.core.train_ce.measure_checkpoint`). No
value is clipped: those outside [0, log 10] are flagged (:func:`range_flag`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ibcore.core.config import TrainConfig, check_seeds
from ibcore.core.measurement import EARLY_EVAL_EVERY
from ibcore.experiments.infoplane import NUM_CLASSES, _at

#: Record kind (folder under the results directory) of the held-out information-plane runs.
KIND = "info_plane"
#: TrainConfig fields the ``heldout`` parameters of the info_plane notebook may set for every run.
HELDOUT_PARAMS = (
    "dataset",
    "fraction",
    "steps",
    "val_size",
    "batch_size",
    "sigma",
    "sigma_mode",
    "probe_steps",
    "checkpoints",
    "checkpoint_probe_steps",
    "lr",
    "critic_lr",
)
#: Keys of one row of the held-out set: the method and what it changes.
HELDOUT_ROW_KEYS = ("method", "beta", "penalty", "critic_steps", "steps", "measure_steps")


def heldout_configs(params: dict[str, Any] | None) -> list[TrainConfig]:
    """The runs of the held-out information plane (issue 10 item 3), from the ``heldout`` mapping
    of the info_plane parameters: the fields of :data:`HELDOUT_PARAMS` shared by every run,
    ``seeds``, ``ce_steps`` and ``measure_steps`` (cross-entropy rows only: the IB trainer
    measures at its checkpoints anyway, so its runs keep the config, and run id, they have
    without) and ``rows``, each {method, beta?, penalty?, critic_steps?}. Needs ``val_size`` > 0:
    held-out I(Y; L_i) is measured on the validation split. Seeds outermost."""
    if not params:
        return []
    unknown = set(params) - {*HELDOUT_PARAMS, "seeds", "rows", "ce_steps", "measure_steps"}
    if unknown:
        raise ValueError(f"unknown heldout parameter(s) {sorted(unknown)}")
    if not params.get("val_size"):
        raise ValueError("the held-out information plane measures on a validation split: set val_size > 0")
    shared = {k: params[k] for k in HELDOUT_PARAMS if params.get(k) is not None}
    out = []
    for seed in check_seeds(params.get("seeds", [0]), "heldout seeds"):
        for row in params.get("rows") or []:
            bad = set(row) - set(HELDOUT_ROW_KEYS)
            if bad:
                raise ValueError(f"heldout row {row}: unknown key(s) {sorted(bad)}; use {HELDOUT_ROW_KEYS}")
            fields = {**shared, **row, "seed": seed}
            if row.get("method") == "ce":
                if "steps" not in row and params.get("ce_steps"):
                    fields["steps"] = params["ce_steps"]
                fields.setdefault("measure_steps", params.get("measure_steps", 0))
            out.append(TrainConfig(**fields))
    return out


# -- held-out I(Y; L_i) (issue 10 item 3) ----------------------------------------------------------

HELDOUT_COLUMNS = [
    "row",
    "method",
    "beta",
    "penalty",
    "seed",
    "layer",
    "k",
    "step",
    "progress",
    "I_y",
    "I_y_val",
    "I_y_probe_lower",
    "probe_val_accuracy",
    "H_y_val",
    "flag_I_y",
    "flag_I_y_val",
    "flag_I_y_probe_lower",
]
#: The range every I(Y; L) value must lie in (K = 10 classes): values outside it are flagged.
Y_RANGE = (0.0, math.log(NUM_CLASSES))


def row_name(config: dict[str, Any]) -> str:
    """The name of a run's training in tables: "cross-entropy", "β = 0" or "<penalty> β = <beta>"."""
    if config["method"] == "ce":
        return "cross-entropy"
    if not config["beta"]:
        return "β = 0"
    return f"{config.get('penalty', 'tied')} β = {float(config['beta']):g}"


def range_flag(value: float | None) -> str:
    """ "" when ``value`` lies in [0, log 10]; else "below 0", "above log 10" or "missing"."""
    if value is None or value != value:
        return "missing"
    if value < Y_RANGE[0]:
        return "below 0"
    if value > Y_RANGE[1]:
        return "above log 10"
    return ""


def heldout_trajectories(records: Iterable[dict[str, Any]]):
    """pandas DataFrame, one row per (record, layer, checkpoint) of runs with a validation split:
    I(Y; L_i) of the label critic on the training samples (``I_y``) and on the validation samples
    (``I_y_val``), the probe bound H(Y) - CE_val (``I_y_probe_lower``) and the probe's validation
    accuracy, each with its :func:`range_flag` (values are never clipped); columns
    :data:`HELDOUT_COLUMNS`. Records without held-out values are skipped."""
    import pandas as pd

    rows = []
    for r in records:
        c = r["config"]
        curves = r.get("curves") or {}
        base = {"row": row_name(c), "method": c["method"], "beta": float(c["beta"]), "seed": c["seed"]}
        base["penalty"] = c.get("penalty", "tied") if c["method"] == "ib" and c["beta"] else ""
        if c["method"] == "ib":
            parts = [
                (layer["layer"], layer, lambda v, k, _i: _at(v, k)) for layer in curves.get("layers", [])
            ]
        else:
            ce = curves.get("ce", {})
            n_layers = len(ce["I_y"][0]) if ce.get("I_y") else 0
            parts = [(i, ce, lambda v, k, i: _at(v, k, i - 1)) for i in range(1, n_layers + 1)]
        for layer, curve, get in parts:
            if "I_y_val" not in curve:
                continue
            for k, step in enumerate(curve["step"]):
                values = {
                    key: get(curve.get(key), k, layer)
                    for key in ("I_y", "I_y_val", "I_y_probe_lower", "probe_val_accuracy")
                }
                rows.append(
                    {
                        **base,
                        "layer": layer,
                        "k": k,
                        "step": step,
                        "progress": step / c["steps"],
                        **values,
                        "H_y_val": float(curve.get("H_y_val", math.nan)),
                        **{f"flag_{q}": range_flag(values[q]) for q in ("I_y", "I_y_val", "I_y_probe_lower")},
                    }
                )
    return pd.DataFrame(rows, columns=HELDOUT_COLUMNS)


def heldout_summary(frame):
    """Per (row, layer) at the last checkpoint: mean and sample std over seeds of I_y (training
    samples), I_y_val (validation samples), the probe bound and the probe's validation accuracy;
    ``seeds``; and the number of that curve's values (all checkpoints and seeds) flagged outside
    [0, log 10] for each quantity (``flagged_*``)."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame()
    out = []
    order = {"cross-entropy": 0, "β = 0": 1}
    for (row, layer), part in frame.groupby(["row", "layer"], sort=False):
        last = part[part["k"] == part["k"].max()]
        entry: dict[str, Any] = {"row": row, "layer": int(layer), "seeds": int(last["seed"].nunique())}
        for q in ("I_y", "I_y_val", "I_y_probe_lower", "probe_val_accuracy"):
            entry[f"{q}_mean"] = float(last[q].mean())
            entry[f"{q}_std"] = float(last[q].std()) if len(last) > 1 else math.nan
        for q in ("I_y", "I_y_val", "I_y_probe_lower"):
            entry[f"flagged_{q}"] = int((part[f"flag_{q}"] != "").sum())
        entry["points"] = len(part)
        out.append(entry)
    table = pd.DataFrame(out)
    table["_order"] = [order.get(r, 2) for r in table["row"]]
    return table.sort_values(["_order", "row", "layer"]).drop(columns="_order").reset_index(drop=True)


# -- early stopping of the measurement estimators (issue 15 item 2) ---------------------------------

#: Beside the records: the measured effect of early stopping on the information-plane estimators.
EARLY_STOPPING_FILE = "info_plane_early_stopping.json"


def early_stopping_check(
    config: TrainConfig,
    seeds: list[int],
    patience: int,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Train the cross-entropy net of ``config`` (``measure_steps`` = 0 for the training), then
    measure every layer of the frozen net with :func:`ibcore.core.measurement.measure_layers_early`
    for each of ``seeds``, with the full ``config.measure_steps`` budget and with early stopping
    at ``patience``. Per layer and quantity: the mean and the spread (sample std) over seeds of
    each, their difference, the mean stopping step and the wall time of each; ``within_spread``
    is True when |difference| is at most the larger spread. CPU, minutes."""
    import statistics
    import time
    from dataclasses import replace

    from ibcore.core.data import load_dataset, with_validation
    from ibcore.core.measurement import measure_layers_early
    from ibcore.core.training import train

    device = torch.device("cpu")
    data = load_dataset(config.dataset, data_dir, device, fraction=config.fraction, subset_seed=config.seed)
    if config.val_size:
        data = with_validation(data, config.val_size, data_dir)
    net = train(replace(config, measure_steps=0), data, device, progress=False)["model"]
    net.eval()
    runs: dict[str, list[dict]] = {"full": [], "early": []}
    seconds = {"full": 0.0, "early": 0.0}
    for mode, pat in (("full", None), ("early", patience)):
        for seed in seeds:
            t0 = time.perf_counter()
            runs[mode].append(measure_layers_early(net, data, config, seed, pat, pat))
            seconds[mode] += time.perf_counter() - t0
    layers = []
    for i in range(len(runs["full"][0]["I_x"])):
        for q, stop in (("I_x", "stop_x"), ("I_y", "stop_y")):
            full = [r[q][i] for r in runs["full"]]
            early = [r[q][i] for r in runs["early"]]
            spread = max(statistics.stdev(full), statistics.stdev(early)) if len(seeds) > 1 else math.nan
            diff = statistics.mean(early) - statistics.mean(full)
            layers.append(
                {
                    "layer": i + 1,
                    "quantity": q,
                    "full_mean": statistics.mean(full),
                    "full_std": statistics.stdev(full) if len(seeds) > 1 else math.nan,
                    "early_mean": statistics.mean(early),
                    "early_std": statistics.stdev(early) if len(seeds) > 1 else math.nan,
                    "difference": diff,
                    "within_spread": bool(abs(diff) <= spread),
                    "early_stop_step": statistics.mean(r[stop][i] for r in runs["early"]),
                    "full": full,
                    "early": early,
                }
            )
    return {
        "config": config.to_dict(),
        "seeds": list(seeds),
        "patience": patience,
        "seconds": seconds,
        "rows": layers,
    }


def runs_markdown(
    configs: list[TrainConfig], records: list[dict[str, Any]], missing: list[TrainConfig]
) -> str:
    """Which runs the held-out section shows: rows, seeds, budgets, validation size and run ids."""
    if not configs:
        return "This profile declares no held-out runs (`info_plane.heldout`): nothing to show."
    from ibcore.core.results import config_id

    c0 = next((c for c in configs if c.method == "ib"), configs[0])
    rows = list(dict.fromkeys(row_name(c.to_dict()) for c in configs))
    ce = [c for c in configs if c.method == "ce"]
    lines = [
        f"{len(records)} of {len(configs)} runs stored (kind `{KIND}`): "
        f"{'MNIST' if c0.dataset == 'mnist' else 'CIFAR-10'} {100 * c0.fraction:g} % with "
        f"{c0.val_size} validation images, rows {', '.join(rows)}; seeds "
        f"{sorted({c.seed for c in configs})}; "
        + (f"{c0.steps} IB steps per layer" if c0.method == "ib" else "no IB rows")
        + (
            f", {ce[0].steps} cross-entropy steps measured with estimators of {ce[0].measure_steps} steps"
            if ce
            else ""
        )
        + f"; {c0.checkpoints} checkpoints, checkpoint probes of {c0.checkpoint_probe_steps} steps, "
        f"σ = {c0.sigma:g} ({c0.sigma_mode}).",
        "Run ids: "
        + ", ".join(f"`{r['run_id']}` ({row_name(r['config'])}, seed {r['config']['seed']})" for r in records)
        + ".",
    ]
    if missing:
        lines.append(
            f"**Missing** ({len(missing)}): "
            + ", ".join(
                f"{row_name(c.to_dict())} seed {c.seed} (`{config_id(c.to_dict())}`)" for c in missing
            )
            + " — compute them with `table1.run_configs(heldout_plane.heldout_configs(params), "
            f"results_dir, kind='{KIND}')` (ibcore.experiments)."
        )
    return "\n\n".join(lines)


def early_stopping_markdown(result: dict[str, Any] | None) -> str:
    """The verdict of :func:`early_stopping_check`'s stored result, per quantity and layer."""
    if not result:
        return "Early stopping of the measurement estimators has not been measured in this profile."
    rows = result["rows"]
    kept = [r for r in rows if r["within_spread"]]
    sec = result["seconds"]
    head = (
        f"Measured on the frozen cross-entropy net of the first held-out run (seed "
        f"{result['config']['seed']}, {result['config']['steps']} steps), every layer measured with "
        f"{len(result['seeds'])} estimator seeds, at most {result['config']['measure_steps']} steps, "
        f"without and with early stopping (patience {result['patience']}, checked every "
        f"{EARLY_EVAL_EVERY} steps): {len(kept)} of {len(rows)} (layer, quantity) means moved by at most "
        f"the seed spread; the measurements took {sec['full']:.0f} s without and {sec['early']:.0f} s "
        "with it (wall time on the shared CPU)."
    )
    verdicts = []
    for q, name in (("I_y", "I(Y;L)"), ("I_x", "I(X;L+ε)")):
        mine = [r for r in rows if r["quantity"] == q]
        moved = [f"layer {r['layer']}" for r in mine if not r["within_spread"]]
        verdict = f"**{'not kept' if moved else 'kept'} for {name}**"
        verdicts.append(verdict + (f" ({', '.join(moved)} moved beyond the spread)" if moved else ""))
    lines = [head, "", "Early stopping is " + "; ".join(verdicts) + ".", ""]
    for r in rows:
        q = "I(X;L+ε)" if r["quantity"] == "I_x" else "I(Y;L)"
        lines.append(
            f"- layer {r['layer']}, {q}: {r['full_mean']:.3g} ± {r['full_std']:.2g} (full) vs "
            f"{r['early_mean']:.3g} ± {r['early_std']:.2g} (stopped at step {r['early_stop_step']:.0f} on "
            f"average): **{'within' if r['within_spread'] else 'beyond'} the seed spread**"
        )
    return "\n".join(lines)
