"""Figure 1: MINE vs architecture-aware MINE (AA-MINE) on I(X; L + eps) as the noise shrinks.

Two panels, each an estimate of I(X; L + eps), eps ~ N(0, sigma^2 I), on a grid of sigma^2:

- panel "a" (the paper's Fig. 1): L is the output of a 3-layer MLP with random (default
  PyTorch, seeded) weights on MNIST training images. The true MI is unknown; it is infinite at
  sigma^2 = 0 (Sec. 2). As a reference each record also holds the Gaussian (maximum-entropy)
  upper bound 1/2 log det(I + Sigma_L / sigma^2) computed from the clean features, which bounds
  the true MI from above for every sigma^2 > 0.
- panel "b" (a check with known truth): L = W X on X ~ N(0, I); the true MI is Eq. 5
  (:func:`ibcore.analytic.linear_gaussian_mi`).

Every (panel, estimator, sigma^2, seed) is one record of kind ``"figure1"`` in the shared
results format (:func:`ibcore.results.run_all`): finished records are read back, not rerun.
This module runs and tabulates; plotting lives in the notebook ``nbs/fig1_estimators.ipynb``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ibcore.analytic import linear_gaussian_mi
from ibcore.data import SPECS, load_dataset
from ibcore.estimators import AAMINE, MINE, NeuralEstimator
from ibcore.models import mlp
from ibcore.results import environment, run_all
from ibcore.runtime import resolve_device

KIND = "figure1"
#: Bumped whenever a code change alters the numbers, so that old records are not reused.
VERSION = 1
PANELS = ("a", "b")
ESTIMATORS = ("mine", "aamine")
ESTIMATOR_LABELS = {"mine": "MINE", "aamine": "AA-MINE"}
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
) -> list[dict[str, Any]]:
    """The configurations of Figure 1, one per (panel, estimator, sigma^2, seed).

    Raises ``ValueError`` naming the first bad parameter; nothing is computed. Panel "a" uses
    the first ``n_samples`` MNIST training images and an MLP of ``widths`` (784 inputs; the
    paper's net has 3 layers, ``len(widths) == 4``) whose weights are drawn with ``seed``.
    Panel "b" uses ``gaussian_samples`` draws (with ``seed``) of X ~ N(0, I_D) and the fixed
    layer W = ``gaussian_gain`` * G / sqrt(D), G a K x D standard normal matrix drawn with
    ``gaussian_weight_seed``, (D, K) = ``gaussian_dims``. ``copy_lr_factor`` is AA-MINE's
    learning-rate factor for its copy of the measured layers (0: frozen at F, which is the
    optimum here since the measured net does not change).
    """
    grid = _check_sigma2_grid(sigma2_grid)
    seeds = _check_seeds(seeds)
    panels = _check_choice("panels", panels, PANELS)
    estimators = _check_choice("estimators", estimators, ESTIMATORS)
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

    configs = []
    for panel in panels:
        for estimator in estimators:
            extra = {"copy_lr_factor": float(copy_lr_factor)} if estimator == "aamine" else {}
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


# -- the measured layers -------------------------------------------------------------------


def gaussian_weight(config: dict[str, Any]) -> torch.Tensor:
    """Panel b's fixed K x D layer W (float32, CPU)."""
    d_in, d_out = config["gaussian_dims"]
    gen = torch.Generator().manual_seed(config["gaussian_weight_seed"])
    return config["gaussian_gain"] * torch.randn(d_out, d_in, generator=gen) / math.sqrt(d_in)


def panel_b_problem(config: dict[str, Any], device: torch.device):
    """(net, x, true MI) of panel b: a one-block LayerStack computing W x, X ~ N(0, I)."""
    d_in, d_out = config["gaussian_dims"]
    weight = gaussian_weight(config)
    net = mlp([d_in, d_out])
    with torch.no_grad():
        linear = net.blocks[0][-1]
        linear.weight.copy_(weight)
        linear.bias.zero_()
    gen = torch.Generator().manual_seed(config["seed"])
    x = torch.randn(config["gaussian_samples"], d_in, generator=gen)
    s2 = config["sigma2"]
    true_mi = linear_gaussian_mi(weight, torch.eye(d_in), s2) if s2 > 0 else math.inf
    return net.to(device), x.to(device), true_mi


def panel_a_net(config: dict[str, Any], device: torch.device):
    """Panel a's MLP with default PyTorch initialisation drawn with ``seed``, frozen."""
    torch.manual_seed(config["seed"])
    net = mlp(config["widths"]).to(device)
    net.requires_grad_(False)
    return net


def gaussian_upper_bound(features: torch.Tensor, sigma2: float) -> float:
    """1/2 log det(I + Sigma_L / sigma^2): the MI of Gaussian L with L's covariance.

    For any L = F(X), I(X; L + eps) = h(L + eps) - h(eps) <= this value (the Gaussian has the
    largest entropy for a given covariance). Infinite at sigma^2 = 0.
    """
    if sigma2 == 0:
        return math.inf
    f = features.flatten(1).double()
    cov = torch.atleast_2d(torch.cov(f.T))
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    return float(0.5 * torch.linalg.slogdet(eye + cov / sigma2)[1])


def make_estimator(config: dict[str, Any], network: torch.nn.Module, device: torch.device) -> NeuralEstimator:
    kwargs = dict(
        steps=config["steps"],
        batch_size=config["batch_size"],
        lr=config["lr"],
        noise_std=math.sqrt(config["sigma2"]),
        holdout_fraction=config["holdout_fraction"],
        eval_shuffles=config["eval_shuffles"],
        hidden=tuple(config["hidden"]),
        seed=config["seed"],
        device=device,
    )
    if config["estimator"] == "aamine":
        return AAMINE(network, copy_lr_factor=config["copy_lr_factor"], **kwargs)
    return MINE(**kwargs)


def json_number(value: float) -> float | None:
    """``value`` for a JSON record: infinities and NaN become None (JSON has no inf)."""
    return float(value) if math.isfinite(value) else None


# -- running -------------------------------------------------------------------------------


PROJECT_MARKERS = ("_config.yml", "pyproject.toml")


def resolve_results_dir(results_dir: str | os.PathLike, start: str | os.PathLike | None = None) -> Path:
    """``results_dir``, a relative one taken from the project root rather than the working folder.

    The project root is the nearest folder at or above ``start`` (default: the working folder)
    that holds ``_config.yml`` or ``pyproject.toml``; without one the working folder is used. So a
    notebook run by nbval (working folder ``nbs/``) and by the pipeline (working folder the root)
    read and write the same ``results/<profile>``.
    """
    path = Path(results_dir).expanduser()
    if path.is_absolute():
        return path
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).is_file() for m in PROJECT_MARKERS):
            return folder / path
    return here / path


def record_runner(device: str | torch.device = "auto", data_dir: str | None = None):
    """``run_one(config) -> record fields`` for one Figure 1 configuration (MNIST is loaded
    once, at the first panel-a config)."""
    device = resolve_device(device)
    cache: dict[str, Any] = {}

    def mnist_images(n: int) -> tuple[torch.Tensor, dict]:
        if "mnist" not in cache:
            cache["mnist"] = load_dataset("mnist", data_dir=data_dir, device="cpu")
        ds = cache["mnist"]
        return ds.x_train[:n].to(device), {**ds.source, "images": f"x_train[:{n}]"}

    def run_one(config: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        metrics: dict[str, Any] = {}
        if config["panel"] == "a":
            x, source = mnist_images(config["n_samples"])
            net = panel_a_net(config, device)
            with torch.no_grad():
                features = net(x)
            metrics["gaussian_upper_bound"] = json_number(gaussian_upper_bound(features, config["sigma2"]))
            measured = net.prefix(len(net))
        else:
            net, x, true_mi = panel_b_problem(config, device)
            with torch.no_grad():
                features = net(x)
            metrics["true_mi"] = json_number(true_mi)
            measured = net.prefix(1)
            source = {"synthetic": "X ~ N(0, I), W fixed by gaussian_weight_seed"}
        setup_s = time.perf_counter() - start
        estimate = make_estimator(config, measured, device).estimate(x, features)
        total_s = time.perf_counter() - start
        metrics["mi"] = json_number(estimate.value)
        metrics["mi_is_inf"] = math.isinf(estimate.value)
        metrics["holdout_size"] = estimate.holdout_size
        return {
            "metrics": metrics,
            "curves": {"steps": estimate.curve_steps, "dv_train": estimate.curve},
            "timings": {"setup_s": setup_s, "estimate_s": total_s - setup_s, "total_s": total_s},
            "environment": environment(device),
            "data_source": source,
        }

    return run_one


def run_figure1(
    results_dir: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    data_dir: str | None = None,
    progress: bool = False,
    **params: Any,
) -> list[dict[str, Any]]:
    """Run (or read back) every record of Figure 1; ``params`` go to :func:`figure1_configs`.

    All parameters, the device included, are checked before any work; MNIST is loaded only
    when a panel-a record is missing. Returns the records in config order. A relative
    ``results_dir`` is taken from the project root (:func:`resolve_results_dir`).
    """
    configs = figure1_configs(**params)
    results_dir = resolve_results_dir(results_dir)
    run_one = record_runner(device, data_dir)
    return run_all(results_dir, KIND, configs, run_one, progress=progress)


# -- tables and the verdict ----------------------------------------------------------------


def _mi_value(metrics: dict[str, Any]) -> float:
    if metrics.get("mi") is None:
        return math.inf if metrics.get("mi_is_inf") else math.nan
    return float(metrics["mi"])


def figure1_frame(records: Iterable[dict[str, Any]]):
    """One row per record: panel, estimator, sigma2, seed, mi, true_mi, upper_bound, seconds."""
    import pandas as pd

    rows = []
    for r in records:
        if r.get("kind", KIND) != KIND:
            continue
        c, m = r["config"], r["metrics"]
        s2 = float(c["sigma2"])
        true_mi = math.nan
        if c["panel"] == "b":
            true_mi = math.inf if m.get("true_mi") is None else float(m["true_mi"])
        bound = math.nan
        if c["panel"] == "a":
            bound = math.inf if m.get("gaussian_upper_bound") is None else float(m["gaussian_upper_bound"])
        rows.append(
            {
                "panel": c["panel"],
                "estimator": c["estimator"],
                "sigma2": s2,
                "seed": c["seed"],
                "mi": _mi_value(m),
                "true_mi": true_mi,
                "upper_bound": bound,
                "seconds": float(r.get("timings", {}).get("total_s", math.nan)),
            }
        )
    columns = ["panel", "estimator", "sigma2", "seed", "mi", "true_mi", "upper_bound", "seconds"]
    return pd.DataFrame(rows, columns=columns)


def figure1_table(records: Iterable[dict[str, Any]]):
    """Mean, std and count over seeds of each (panel, estimator, sigma2), with the references.

    Columns: panel, estimator, sigma2, mean, std (NaN for one seed), n, true_mi (panel b, Eq. 5;
    inf at sigma2 = 0; NaN in panel a), upper_bound (panel a, mean over seeds of the Gaussian
    upper bound; NaN in panel b), rel_err ((mean - true_mi) / true_mi where true_mi is finite),
    seconds (mean run time). Sorted by panel, estimator, sigma2.
    """
    import numpy as np
    import pandas as pd

    frame = figure1_frame(records)
    columns = [
        "panel",
        "estimator",
        "sigma2",
        "mean",
        "std",
        "n",
        "true_mi",
        "upper_bound",
        "rel_err",
        "seconds",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    keys = ["panel", "estimator", "sigma2"]
    grouped = frame.groupby(keys, sort=True)
    table = grouped.agg(
        mean=("mi", "mean"),
        std=("mi", "std"),
        n=("mi", "size"),
        true_mi=("true_mi", "first"),
        upper_bound=("upper_bound", "mean"),
        seconds=("seconds", "mean"),
    ).reset_index()
    finite = np.isfinite(table["true_mi"]) & (table["true_mi"] > 0)
    table["rel_err"] = np.where(finite, (table["mean"] - table["true_mi"]) / table["true_mi"], np.nan)
    order = {e: k for k, e in enumerate(ESTIMATORS)}
    table = table.sort_values(
        ["panel", "estimator", "sigma2"], key=lambda s: s.map(order) if s.name == "estimator" else s
    )
    return table[columns].reset_index(drop=True)


def figure1_summary(table) -> dict[str, Any]:
    """The key numbers of Figure 1 from :func:`figure1_table` (NaN where a panel is absent).

    - ``aa_zero``, ``mine_zero``, ``ratio_zero``: panel a means at sigma^2 = 0 and their ratio;
    - ``aa_max``, ``mine_max``, ``sigma2_max``: panel a means at the largest sigma^2;
    - ``aa_monotone``: AA-MINE's panel-a mean decreases (non-strictly) along the grid;
    - ``mine_spread_small``: MINE's panel-a range over sigma^2 <= the median grid value;
    - ``aa_above_bound``: the sigma^2 where AA-MINE's panel-a mean exceeds the Gaussian upper
      bound on the true MI (an over-estimate: the DV value of a finite sample is biased upwards
      at high MI);
    - ``aa_max_rel_err``, ``mine_max_rel_err``: largest |relative error| vs Eq. 5 in panel b over
      sigma^2 > 0, and ``aa_worst_sigma2`` where AA-MINE's is largest.
    """
    import numpy as np

    nan = float("nan")
    out: dict[str, Any] = {
        "aa_zero": nan,
        "mine_zero": nan,
        "ratio_zero": nan,
        "aa_max": nan,
        "mine_max": nan,
        "sigma2_max": nan,
        "aa_monotone": None,
        "aa_max_rel_err": nan,
        "mine_max_rel_err": nan,
        "aa_worst_sigma2": nan,
        "sigma2_min_positive": nan,
        "aa_above_bound": [],
    }

    def series(panel: str, est: str):
        rows = table[(table["panel"] == panel) & (table["estimator"] == est)].sort_values("sigma2")
        return rows.set_index("sigma2")["mean"]

    aa, mine = series("a", "aamine"), series("a", "mine")
    if len(aa):
        out["sigma2_max"] = float(aa.index.max())
        out["aa_max"] = float(aa.iloc[-1])
        out["aa_monotone"] = bool(np.all(np.diff(aa.to_numpy()) <= 0))
        if 0.0 in aa.index:
            out["aa_zero"] = float(aa.loc[0.0])
        positive = aa.index[aa.index > 0]
        if len(positive):
            out["sigma2_min_positive"] = float(positive.min())
    rows = table[(table["panel"] == "a") & (table["estimator"] == "aamine")]
    above = rows[np.isfinite(rows["upper_bound"]) & (rows["mean"] > rows["upper_bound"])]
    out["aa_above_bound"] = sorted(float(s2) for s2 in above["sigma2"])
    if len(mine):
        out["mine_max"] = float(mine.iloc[-1])
        if 0.0 in mine.index:
            out["mine_zero"] = float(mine.loc[0.0])
    if out["mine_zero"] > 0:
        out["ratio_zero"] = out["aa_zero"] / out["mine_zero"]
    for est, key in (("aamine", "aa_max_rel_err"), ("mine", "mine_max_rel_err")):
        rows = table[(table["panel"] == "b") & (table["estimator"] == est) & np.isfinite(table["rel_err"])]
        if len(rows):
            worst = rows.loc[rows["rel_err"].abs().idxmax()]
            out[key] = float(abs(worst["rel_err"]))
            if est == "aamine":
                out["aa_worst_sigma2"] = float(worst["sigma2"])
    return out


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def figure1_verdict(summary: dict[str, Any]) -> str:
    """A Markdown paragraph stating what the numbers show, built only from ``summary``."""
    lines = []
    if not math.isnan(summary["aa_zero"]):
        ratio = summary["ratio_zero"]
        ratio_text = (
            f"{_fmt(ratio)} times MINE's ({_fmt(summary['mine_zero'])} nats)"
            if not math.isnan(ratio)
            else f"MINE gives {_fmt(summary['mine_zero'])} nats"
        )
        lines.append(
            f"- At σ² = 0 (true MI infinite) AA-MINE estimates {_fmt(summary['aa_zero'])} nats, {ratio_text}."
        )
    if summary["aa_monotone"] is not None:
        lines.append(
            "- AA-MINE decreases monotonically as σ² grows: "
            f"**{'yes' if summary['aa_monotone'] else 'no'}** (at the largest "
            f"σ² = {_fmt(summary['sigma2_max'])}: AA-MINE {_fmt(summary['aa_max'])}, "
            f"MINE {_fmt(summary['mine_max'])} nats)."
        )
    if summary["aa_monotone"] is not None:
        above = summary["aa_above_bound"]
        lines.append(
            "- AA-MINE stays below the Gaussian upper bound on the true MI at every σ² > 0: "
            + (
                "**yes**."
                if not above
                else f"**no**, it exceeds it at σ² = {', '.join(_fmt(s) for s in above)} "
                "(an over-estimate: the held-out DV value of a finite sample is noisy and, at high MI, "
                "biased upwards)."
            )
        )
    if not math.isnan(summary["aa_max_rel_err"]):
        lines.append(
            f"- Linear-Gaussian check (panel b), largest error vs Eq. 5 over σ² > 0: "
            f"AA-MINE {100 * summary['aa_max_rel_err']:.1f} % (at σ² = {_fmt(summary['aa_worst_sigma2'])}), "
            f"MINE {100 * summary['mine_max_rel_err']:.1f} %."
        )
    return "\n".join(lines) if lines else "No records to judge."


def figure1_display_table(table):
    """:func:`figure1_table` as strings for a page: "mean ± std", the reference, relative error."""
    import pandas as pd

    def pm(row) -> str:
        mean, std = _fmt(row["mean"]), row["std"]
        return mean if not (isinstance(std, float) and math.isfinite(std)) else f"{mean} ± {_fmt(std)}"

    def reference(row) -> str:
        if row["panel"] == "b":
            return f"{_fmt(row['true_mi'])} (Eq. 5)"
        return f"≤ {_fmt(row['upper_bound'])} (Gaussian bound)"

    if table.empty:
        return pd.DataFrame(
            columns=["panel", "σ²", "estimator", "estimate [nats]", "reference [nats]", "rel. error", "seeds"]
        )
    out = pd.DataFrame(
        {
            "panel": table["panel"],
            "σ²": [_fmt(s) for s in table["sigma2"]],
            "estimator": [ESTIMATOR_LABELS[e] for e in table["estimator"]],
            "estimate [nats]": table.apply(pm, axis=1),
            "reference [nats]": table.apply(reference, axis=1),
            "rel. error": [f"{100 * r:+.1f} %" if math.isfinite(r) else "" for r in table["rel_err"]],
            "seeds": table["n"].astype(int),
        }
    )
    return out
