"""Table 1: cross-entropy vs layer-by-layer I(Y;L_i) vs layer-by-layer I(Y;L_i) - beta I(X;L_i+eps).

A *cell* is (dataset, fraction, row); a row is "ce", "iy" (IB training with beta = 0) or
"ib" (IB training with beta > 0). Each cell is run for several seeds; one record per run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace

import torch

from ibcore.core.config import TrainConfig, check_seeds
from ibcore.core.data import Dataset, load_dataset, with_validation
from ibcore.core.results import atomic_torch_save, environment, load_state, record_path, run_all
from ibcore.core.runtime import resolve_device
from ibcore.core.training import train

KIND = "table1"
ROWS = {"ce": "Cross-entropy", "iy": "L = I(Y;L_i)", "ib": "L = I(Y;L_i) - beta I(X;L_i+eps)"}

# Test accuracy (%) of Table 1 of the paper, by (dataset, fraction) and row.
PAPER = {
    ("mnist", 0.01): {"ce": 85.78, "iy": 85.12, "ib": 86.57},
    ("mnist", 1.0): {"ce": 97.73, "iy": 97.77, "ib": 98.09},
    ("cifar10", 1.0): {"ce": 58.23, "iy": 60.59, "ib": 61.75},
}


def row_of(config: TrainConfig | dict) -> str:
    """The Table 1 row of a config: "ce", "iy" (beta = 0) or "ib"."""
    method = config.method if isinstance(config, TrainConfig) else config["method"]
    beta = config.beta if isinstance(config, TrainConfig) else config["beta"]
    if method == "ce":
        return "ce"
    return "ib" if beta > 0 else "iy"


def cell_configs(
    base: TrainConfig,
    rows: Iterable[str] = ("ce", "iy", "ib"),
    seeds: Sequence[int] = (0, 1, 2),
    beta: float | None = None,
    ce_steps: int | None = None,
) -> list[TrainConfig]:
    """The configs of one cell's rows and seeds. ``beta`` is the beta of the "ib" row
    (default ``base.beta``); ``ce_steps`` the length of cross-entropy training (default
    ``base.steps`` times the number of layers, so both methods make as many updates)."""
    beta = base.beta if beta is None else beta
    check_seeds(seeds)
    if ce_steps is not None and (isinstance(ce_steps, bool) or not isinstance(ce_steps, int) or ce_steps < 1):
        raise ValueError(f"ce_steps must be an integer >= 1 (or left out: steps x layers), got {ce_steps!r}")
    out = []
    for row in rows:
        if row not in ROWS:
            raise ValueError(f"unknown Table 1 row {row!r}; choose from {sorted(ROWS)}")
    for seed in seeds:  # seeds outermost: an interrupted table has whole seeds of every row
        for row in rows:
            if row == "ce":
                n_layers = len(base.widths) - 1 if base.arch == "mlp" else len(base.channels) + 1
                steps = ce_steps or base.steps * n_layers
                out.append(replace(base, method="ce", beta=0.0, steps=steps, seed=seed))
            elif row == "iy":
                out.append(replace(base, method="ib", beta=0.0, seed=seed))
            else:
                if beta <= 0:
                    raise ValueError(f"the 'ib' row needs beta > 0, got {beta}")
                out.append(replace(base, method="ib", beta=beta, seed=seed))
    return out


class DataCache:
    """Loads each (dataset, fraction, subset seed, validation size) once per process."""

    def __init__(self, data_dir: str | os.PathLike | None, device: torch.device) -> None:
        self.data_dir, self.device = data_dir, device
        self._cache: dict[tuple, Dataset] = {}

    def get(self, config: TrainConfig) -> Dataset:
        key = (config.dataset, config.fraction, config.seed if config.fraction < 1 else 0, config.val_size)
        if key not in self._cache:
            data = load_dataset(
                config.dataset, self.data_dir, self.device, fraction=config.fraction, subset_seed=key[2]
            )
            if config.val_size:
                data = with_validation(data, config.val_size, self.data_dir)
            self._cache[key] = data
        return self._cache[key]


def run_configs(
    configs: Iterable[TrainConfig],
    results_dir: str | os.PathLike,
    device: str | torch.device = "auto",
    data_dir: str | os.PathLike | None = None,
    kind: str = KIND,
    progress: bool = True,
    save_models: bool = False,
) -> list[dict]:
    """Run every config not yet stored under ``results_dir`` and return all records.

    The subset of a fractional data set is drawn with the run's seed. An interrupted run
    resumes from ``<record>.ckpt.pt`` beside its future record. ``save_models`` keeps each
    trained net's weights as ``<record>.model.pt``.
    """
    configs = list(configs)
    device = resolve_device(device)
    cache = DataCache(data_dir, device)
    by_dict = {repr(c.to_dict()): c for c in configs}

    def run_one(cfg_dict: dict) -> dict:
        config = by_dict[repr(cfg_dict)]
        data = cache.get(config)
        ckpt = record_path(results_dir, kind, cfg_dict).with_suffix(".ckpt.pt")
        out = train(config, data, device, checkpoint=ckpt, progress=progress)
        model = out.pop("model")
        if save_models:
            atomic_torch_save(model.state_dict(), ckpt.with_name(ckpt.name.replace(".ckpt.pt", ".model.pt")))
        return {**out, "environment": environment(device), "data_source": data.source}

    def drop_checkpoint(cfg_dict: dict) -> None:  # only once the record is safely stored
        record_path(results_dir, kind, cfg_dict).with_suffix(".ckpt.pt").unlink(missing_ok=True)

    return run_all(
        results_dir,
        kind,
        [c.to_dict() for c in configs],
        run_one,
        progress=progress,
        on_stored=drop_checkpoint,
        require_model=save_models,
    )


def summarise(records: Iterable[dict]):
    """pandas DataFrame: one row per (dataset, fraction, row) with mean, std and n of the test
    accuracy in %, the mean train accuracy in % (``train_mean``, NaN where records lack it), the
    paper's value and the run size. Runs whose status is not "complete" (diverged ones) are left
    out."""
    import pandas as pd

    rows = []
    for r in records:
        if r.get("status", "complete") != "complete":
            continue
        c = r["config"]
        train = r["metrics"].get("train_accuracy")
        rows.append(
            {
                "dataset": c["dataset"],
                "fraction": c["fraction"],
                "row": row_of(c),
                "beta": c["beta"],
                "sigma": c["sigma"],
                "steps": c["steps"],
                "seed": c["seed"],
                "acc": 100 * r["metrics"]["test_accuracy"],
                "train": float("nan") if train is None else 100 * train,
                "seconds": r["timings"]["train_seconds"],
                "device": r["environment"].get("device"),
            }
        )
    if not rows:
        return pd.DataFrame(columns=["dataset", "fraction", "row", "mean", "std", "n", "train_mean", "paper"])
    df = pd.DataFrame(rows)
    g = df.groupby(["dataset", "fraction", "row"], sort=False)
    out = g.agg(
        mean=("acc", "mean"),
        std=("acc", "std"),
        n=("acc", "size"),
        train_mean=("train", "mean"),
        beta=("beta", "first"),
        sigma=("sigma", "first"),
        steps=("steps", "first"),
        seconds=("seconds", "mean"),
        device=("device", "first"),
    ).reset_index()
    out["paper"] = [
        PAPER.get((d, f), {}).get(r) for d, f, r in zip(out.dataset, out.fraction, out.row, strict=False)
    ]
    out["method"] = out.row.map(ROWS)
    order = {"ce": 0, "iy": 1, "ib": 2}
    out = out.sort_values(
        ["dataset", "fraction", "row"], key=lambda s: s.map(order) if s.name == "row" else s
    )
    return out.reset_index(drop=True)


TRAIN_PARAMS = (
    "sigma",
    "batch_size",
    "lr",
    "critic_lr",
    "probe_steps",
    "probe_lr",
    "checkpoints",
    "checkpoint_probe_steps",
    "measure_steps",
)


def configs_from_params(params: dict) -> list[TrainConfig]:
    """The runs a Table 1 or beta-sweep notebook asks for, from its papermill parameters.

    ``params`` holds ``cells`` (a list of {dataset, fraction, steps, ce_steps?}, each may also
    override any of :data:`TRAIN_PARAMS` for its own runs), ``rows``, ``seeds``, either
    ``beta`` (the "ib" row) or ``betas`` (a sweep: one "ib" run per beta; beta = 0 gives the
    "iy" row), and any of :data:`TRAIN_PARAMS`.
    """
    if not params.get("cells"):
        raise ValueError("params need a non-empty 'cells' list of {dataset, fraction, steps}")
    seeds = params.get("seeds", [0, 1, 2])
    if not seeds:
        raise ValueError("params need at least one seed")
    extra = {k: params[k] for k in TRAIN_PARAMS if params.get(k) is not None}
    configs: list[TrainConfig] = []
    for cell in params["cells"]:
        unknown = set(cell) - {"dataset", "fraction", "steps", "ce_steps", *TRAIN_PARAMS}
        if unknown:
            raise ValueError(
                f"unknown cell keys {sorted(unknown)}; use dataset, fraction, steps, ce_steps "
                f"or one of {list(TRAIN_PARAMS)}"
            )
        overrides = {k: cell[k] for k in TRAIN_PARAMS if cell.get(k) is not None}
        base = TrainConfig(
            dataset=cell["dataset"],
            fraction=cell.get("fraction", 1.0),
            steps=cell.get("steps", 2000),
            **{**extra, **overrides},
        )
        if params.get("betas") is not None:
            for beta in params["betas"]:
                if beta < 0:
                    raise ValueError(f"betas must be >= 0, got {beta}")
                configs += cell_configs(base, ["ib" if beta > 0 else "iy"], seeds, beta=beta)
        else:
            configs += cell_configs(
                base,
                params.get("rows", ["ce", "iy", "ib"]),
                seeds,
                beta=params.get("beta", 1e-3),
                ce_steps=cell.get("ce_steps"),
            )
    return configs


#: Keys a variant may set besides the cell's dataset and fraction (any TrainConfig field but seed).
VARIANT_KEYS = (
    "steps",
    "beta",
    "sigma",
    "lr",
    "critic_lr",
    "batch_size",
    "widths",
    "channels",
    "critic_hidden",
)


def variant_configs(params: dict) -> list[TrainConfig]:
    """Full-IB runs with other settings than the table's ("what we tried" for a cell that falls
    short). ``params["variants"]`` lists dicts {dataset, fraction, seeds?, and any of
    :data:`VARIANT_KEYS`}; unset keys take the table's values (its ``beta`` and training
    parameters, the matching cell's ``steps``)."""
    out: list[TrainConfig] = []
    extra = {k: params[k] for k in TRAIN_PARAMS if params.get(k) is not None}
    cells = {(c["dataset"], c.get("fraction", 1.0)): c for c in params.get("cells", [])}
    for v in params.get("variants") or []:
        unknown = set(v) - {"dataset", "fraction", "seeds", *VARIANT_KEYS}
        if unknown:
            raise ValueError(
                f"unknown variant keys {sorted(unknown)}; use dataset, fraction, seeds, {VARIANT_KEYS}"
            )
        key = (v["dataset"], v.get("fraction", 1.0))
        cell = cells.get(key, {})
        settings = {
            "steps": cell.get("steps", 2000),
            "beta": params.get("beta", 1e-3),
            **{k: cell[k] for k in TRAIN_PARAMS if cell.get(k) is not None},
            **{k: v[k] for k in VARIANT_KEYS if k in v},
        }
        if settings["beta"] <= 0:
            raise ValueError(f"a variant is a full-IB run and needs beta > 0, got {settings['beta']}")
        for seed in check_seeds(v.get("seeds", params.get("seeds", [0])), "the seeds of a variant"):
            out.append(
                TrainConfig(dataset=key[0], fraction=key[1], method="ib", seed=seed, **{**extra, **settings})
            )
    return out


def variant_summary(records: Iterable[dict], bases: dict | None = None):
    """pandas DataFrame: one row per (cell, setting) with mean, std and n of the test accuracy
    in %; a setting is named by the keys in which it differs from ``bases[(dataset, fraction)]``
    (the table's full-IB config of that cell)."""
    import pandas as pd

    rows = []
    for r in records:
        c = r["config"]
        base = (bases or {}).get((c["dataset"], c["fraction"]))
        base_dict = base.to_dict() if base is not None else {}
        changed = {k: c.get(k) for k in VARIANT_KEYS if k in c and c.get(k) != base_dict.get(k)}
        rows.append(
            {
                "dataset": c["dataset"],
                "fraction": c["fraction"],
                "setting": ", ".join(f"{k} = {v}" for k, v in changed.items()) or "as in the table",
                "acc": 100 * r["metrics"]["test_accuracy"],
                "seconds": r["timings"]["train_seconds"],
            }
        )
    columns = ["dataset", "fraction", "setting", "mean", "std", "n", "seconds"]
    if not rows:
        return pd.DataFrame(columns=columns)
    g = pd.DataFrame(rows).groupby(["dataset", "fraction", "setting"], sort=False)
    out = g.agg(mean=("acc", "mean"), std=("acc", "std"), n=("acc", "size"), seconds=("seconds", "mean"))
    return out.reset_index()[columns]


def variants_frame(table_records: Iterable[dict], variant_records: Iterable[dict], params: dict):
    """The full-IB row of each cell that has variants ("as in the table") followed by its
    variants, as from :func:`variant_summary`, in one pandas DataFrame."""
    import pandas as pd

    variant_records = list(variant_records)
    cells = {(r["config"]["dataset"], r["config"]["fraction"]) for r in variant_records}
    bases = {(c.dataset, c.fraction): c for c in configs_from_params(params) if row_of(c) == "ib"}
    base_records = [
        r
        for r in table_records
        if row_of(r["config"]) == "ib" and (r["config"]["dataset"], r["config"]["fraction"]) in cells
    ]
    return pd.concat(
        [variant_summary(base_records, bases), variant_summary(variant_records, bases)], ignore_index=True
    )


def load_model(
    config: TrainConfig, results_dir: str | os.PathLike, kind: str = KIND, device: str | torch.device = "cpu"
):
    """The trained net of a run stored with ``save_models=True``."""
    from ibcore.core.models import build_model

    path = record_path(results_dir, kind, config.to_dict()).with_suffix(".model.pt")
    if not path.is_file():
        raise FileNotFoundError(f"{path} holds no weights: run the config with save_models=True")
    if config.arch == "mlp":
        model = build_model("mlp", widths=config.widths)
    else:
        model = build_model("convnet", channels=config.channels)
    model.load_state_dict(load_state(path, "model file"))  # weights_only=True; names a bad file
    return model.to(resolve_device(device))
