"""Figure 1: MINE vs architecture-aware MINE (AA-MINE) on I(X; L + eps) as the noise shrinks.

Two panels, each an estimate of I(X; L + eps), eps ~ N(0, sigma^2 I), on a grid of sigma^2:

- panel "a" (the paper's Fig. 1): L is the output of a 3-layer MLP with random (default
  PyTorch, seeded) weights on MNIST training images. The true MI is unknown; it is infinite at
  sigma^2 = 0 (Sec. 2). As a reference each record also holds the Gaussian (maximum-entropy)
  upper bound 1/2 log det(I + Sigma_L / sigma^2) computed from the clean features, which bounds
  the true MI from above for every sigma^2 > 0.
- panel "b" (a check with known truth): L = W X on X ~ N(0, I); the true MI is Eq. 5
  (:func:`ibcore.core.analytic.linear_gaussian_mi`).

Every (panel, estimator, sigma^2, seed) is one record of kind ``"figure1"`` in the shared
results format (:func:`ibcore.core.results.run_all`): finished records are read back, not rerun.
This module runs and tabulates; plotting lives in the notebook ``nbs/fig1_estimators.ipynb``.

Issue 10: panel a's exact references (X uniform over the held-out rows of each estimate:
Bhattacharyya / pairwise-KL bounds and a Monte Carlo value) are computed once from the seed of
the random net and stored in ``figure1_reference.json`` beside the records
(:func:`ensure_references`); every estimate carries a status (:func:`figure1_frame`), and the
summary judges trends from certified values only, never from sigma^2 = 0.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.bounds import (
    ABOVE_LOG_N,
    ABOVE_UPPER,
    CERTIFIED,
    STATUSES,
    mi_status,
    mixture_mi_bounds,
    monte_carlo_mixture_mi,
)
from ibcore.core.critics import TiedMixtureCritic
from ibcore.core.data import SPECS, load_dataset
from ibcore.core.estimators import AAMINE, MINE, NeuralEstimator
from ibcore.core.models import mlp
from ibcore.core.results import environment, run_all
from ibcore.core.runtime import resolve_device

KIND = "figure1"
#: Bumped whenever a code change alters the numbers, so that old records are not reused.
VERSION = 1
PANELS = ("a", "b")
#: The estimators of the paper's figure (the default of :func:`figure1_configs`).
ESTIMATORS = ("mine", "aamine")
#: Also "tied": AA-MINE with the tied mixture critic that IB training uses
#: (:class:`ibcore.core.critics.TiedMixtureCritic`), run in panel b when ``training_critic`` is set.
ALL_ESTIMATORS = ("mine", "aamine", "tied")
ESTIMATOR_LABELS = {"mine": "MINE", "aamine": "AA-MINE", "tied": "AA-MINE, training critic"}
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
    training_critic: bool = False,
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
    configs of estimator "tied": AA-MINE with the tied mixture critic of IB training.
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

    if not isinstance(training_critic, bool):
        raise ValueError(f"training_critic must be true or false, got {training_critic!r}")
    configs = []
    for panel in panels:
        extra_estimators = ["tied"] if training_critic and panel == "b" and "tied" not in estimators else []
        for estimator in estimators + extra_estimators:
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


# -- exact references of panel a (issue 10) -------------------------------------------------

#: Stored beside the records: the exact references of panel a, computed once (compute-then-render).
REFERENCE_FILE = "figure1_reference.json"
#: Bumped whenever a code change alters the reference values.
REFERENCE_VERSION = 1
#: Monte Carlo draws of :func:`ibcore.core.bounds.monte_carlo_mixture_mi` per reference.
REFERENCE_MC_DRAWS = 20000
#: Config fields that fix panel a's clean features and held-out split (not sigma^2).
REFERENCE_FIELDS = ("dataset", "widths", "n_samples", "seed", "holdout_fraction")


def heldout_indices(n: int, holdout_fraction: float, seed: int) -> torch.Tensor:
    """The held-out rows of :meth:`NeuralEstimator.estimate` on ``n`` samples run on the CPU
    (its generator's first draw is this permutation; the held-out part comes first)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_hold = max(2, int(round(n * holdout_fraction)))
    return order[:n_hold]


def reference_key(config: dict[str, Any]) -> str:
    """The key of a panel-a record's reference: its features, split and sigma^2."""
    fields = {k: config[k] for k in REFERENCE_FIELDS}
    return json.dumps({**fields, "sigma2": float(config["sigma2"])}, sort_keys=True)


def exact_reference(held: torch.Tensor, sigma2: float, mc_seed: int = 0) -> dict[str, Any]:
    """Exact reference values of I(X; L + eps) with X uniform over the N rows of ``held``.

    ``lower``/``upper``: the Bhattacharyya and pairwise-KL bounds; ``mc``: a Monte Carlo value of
    the mixture MI (:data:`REFERENCE_MC_DRAWS` draws); ``gaussian``: the Gaussian bound of the same
    N points. At sigma^2 = 0 the MI is H(X) = log N when the N feature vectors are distinct
    (lower = upper = mc = log N), and ``gaussian`` is None (infinite).
    """
    n = int(held.shape[0])
    distinct = int(torch.unique(held.flatten(1), dim=0).shape[0])
    out: dict[str, Any] = {"n": n, "log_n": math.log(n), "distinct": distinct}
    if sigma2 == 0:
        exact = math.log(n) if distinct == n else None
        return {**out, "lower": exact, "upper": exact, "mc": exact, "gaussian": None}
    lower, upper = mixture_mi_bounds(held, sigma2)
    mc = monte_carlo_mixture_mi(held, sigma2, n_draws=REFERENCE_MC_DRAWS, seed=mc_seed)
    return {**out, "lower": lower, "upper": upper, "mc": mc, "gaussian": gaussian_upper_bound(held, sigma2)}


def compute_references(
    records: Iterable[dict[str, Any]], data_dir: str | None = None, known: dict | None = None
) -> dict[str, dict[str, Any]]:
    """Exact references (:func:`exact_reference`) of every panel-a record not in ``known``.

    Panel a's net is rebuilt from its seed (:func:`panel_a_net`) and the held-out rows of the
    estimate are recovered (:func:`heldout_indices`); ``check_gaussian`` is the difference
    between the recomputed Gaussian bound of all n_samples and the one stored in the record
    (about 1e-8 when the net is reproduced). Runs on the CPU; seconds per record.
    """
    known = dict(known or {})
    todo = {}
    for r in records:
        c = r["config"]
        if c.get("panel") == "a" and reference_key(c) not in known:
            todo.setdefault(reference_key(c), r)
    if not todo:
        return known
    ds = load_dataset("mnist", data_dir=data_dir, device="cpu")
    features: dict[str, torch.Tensor] = {}
    cpu = torch.device("cpu")
    for key, r in todo.items():
        c = r["config"]
        fkey = json.dumps({k: c[k] for k in REFERENCE_FIELDS}, sort_keys=True)
        if fkey not in features:
            with torch.no_grad():
                features[fkey] = panel_a_net(c, cpu)(ds.x_train[: c["n_samples"]]).flatten(1)
        feats = features[fkey]
        held = feats[heldout_indices(c["n_samples"], c["holdout_fraction"], c["seed"])]
        ref = exact_reference(held, float(c["sigma2"]))
        stored = r.get("metrics", {}).get("gaussian_upper_bound")
        check = None
        if stored is not None:
            check = abs(gaussian_upper_bound(feats, float(c["sigma2"])) - float(stored))
        known[key] = {
            **ref,
            "check_gaussian": check,
            "split_device": r.get("environment", {}).get("device", "cpu"),
        }
    return known


def load_references(results_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The stored references of :func:`ensure_references` ({} when none or of another version)."""
    path = resolve_results_dir(results_dir) / REFERENCE_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if data.get("version") != REFERENCE_VERSION:
        return {}
    return data["references"]


def ensure_references(
    results_dir: str | os.PathLike, records: Iterable[dict[str, Any]], data_dir: str | None = None
) -> dict[str, dict[str, Any]]:
    """The exact references of ``records``, read from ``results_dir/figure1_reference.json``;
    missing ones are computed (:func:`compute_references`) and the file is rewritten."""
    records = list(records)
    known = load_references(results_dir)
    refs = compute_references(records, data_dir=data_dir, known=known)
    if len(refs) != len(known):
        path = resolve_results_dir(results_dir) / REFERENCE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": REFERENCE_VERSION,
            "description": "Exact references of Figure 1 panel a: I(X; L + eps) with X uniform over "
            "the held-out rows of each estimate (ibcore.experiments.figure1.exact_reference), keyed by "
            "ibcore.experiments.figure1.reference_key.",
            "references": dict(sorted(refs.items())),
        }
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return refs


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
    if config["estimator"] == "tied":
        return TiedAAMINE(network, **kwargs)
    return MINE(**kwargs)


class TiedInputCritic(TiedMixtureCritic):
    """The tied mixture critic of IB training on (x, z) pairs: h = F(x) with F the measured
    layers themselves (tied, frozen here since the net does not change), T(x_k, z) =
    -a ||h_k - z||^2 - log mean_j exp(-a ||h_j - z||^2) over the batch, one learnt scale a."""

    def __init__(self, network: torch.nn.Module, feature_dim: int) -> None:
        super().__init__(feature_dim)
        self._network = [network]  # not a submodule: no parameters besides the scale

    def scores(
        self, u: torch.Tensor, v: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            h = self._network[0](u).flatten(1)
        return self.scores_from_features(h, v, perm)


class TiedAAMINE(NeuralEstimator):
    """AA-MINE as IB training measures I(X; L_i + eps): the :class:`TiedInputCritic`, trained on
    batches with the moving-average DV gradient, its DV value evaluated on the held-out samples
    (where the mixture runs over all of them, as it runs over the batch in training)."""

    def __init__(self, network: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network

    def make_critic(self, u: torch.Tensor, v: torch.Tensor) -> torch.nn.Module:
        return TiedInputCritic(self.network, v[0].numel())


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


def _num(value: Any) -> float:
    """A stored number, None as NaN."""
    return math.nan if value is None else float(value)


#: Order of the statuses from best to worst (a row over seeds takes its worst seed's status).
STATUS_ORDER = {s: k for k, s in enumerate(STATUSES)}


def record_status(mi: float, n: int, upper: float) -> str:
    """:func:`ibcore.core.bounds.mi_status` of one estimate; ``upper`` NaN or inf: no known upper bound."""
    if not n:
        return "n/a"
    if math.isnan(mi):
        return ABOVE_UPPER  # a diverged estimate is no MI value
    return mi_status(mi, int(n), upper if math.isfinite(upper) else None)


def figure1_frame(records: Iterable[dict[str, Any]], references: dict[str, dict] | None = None):
    """One row per record: panel, estimator, sigma2, seed, mi, n, true_mi, upper_bound, ref_lower,
    ref_upper, ref_mc, ref_gaussian, status, seconds.

    ``n`` is the held-out sample count of the estimate; ``true_mi`` Eq. 5 (panel b);
    ``upper_bound`` the Gaussian bound of all n_samples stored in the record (panel a); the
    ``ref_*`` columns are the exact references of panel a (:func:`ensure_references`: X uniform
    over the n held-out rows; NaN without references). ``status`` (:func:`ibcore.core.bounds.mi_status`):
    "above upper bound" when the estimate exceeds the tightest known upper bound (panel a: the
    pairwise-KL and the held-out Gaussian bound, or without references the stored Gaussian bound;
    panel b: the true MI), "above log N" when it exceeds log n, else "certified".
    """
    import pandas as pd

    references = references or {}
    rows = []
    for r in records:
        if r.get("kind", KIND) != KIND:
            continue
        c, m = r["config"], r["metrics"]
        s2 = float(c["sigma2"])
        mi = _mi_value(m)
        n = int(m.get("holdout_size") or 0)
        true_mi = bound = math.nan
        ref = {}
        if c["panel"] == "b":
            true_mi = math.inf if m.get("true_mi") is None else float(m["true_mi"])
            upper = true_mi
        else:
            bound = math.inf if m.get("gaussian_upper_bound") is None else float(m["gaussian_upper_bound"])
            ref = references.get(reference_key(c), {}) if "widths" in c else {}
            known = [v for v in (_num(ref.get("upper")), _num(ref.get("gaussian"))) if math.isfinite(v)]
            upper = min(known) if known else bound
        rows.append(
            {
                "panel": c["panel"],
                "estimator": c["estimator"],
                "sigma2": s2,
                "seed": c["seed"],
                "mi": mi,
                "n": n,
                "true_mi": true_mi,
                "upper_bound": bound,
                "ref_lower": _num(ref.get("lower")),
                "ref_upper": _num(ref.get("upper")),
                "ref_mc": _num(ref.get("mc")),
                "ref_gaussian": _num(ref.get("gaussian")),
                "status": record_status(mi, n, upper),
                "seconds": float(r.get("timings", {}).get("total_s", math.nan)),
            }
        )
    columns = [
        "panel",
        "estimator",
        "sigma2",
        "seed",
        "mi",
        "n",
        "true_mi",
        "upper_bound",
        "ref_lower",
        "ref_upper",
        "ref_mc",
        "ref_gaussian",
        "status",
        "seconds",
    ]
    return pd.DataFrame(rows, columns=columns)


TABLE_COLUMNS = [
    "panel",
    "estimator",
    "sigma2",
    "mean",
    "std",
    "n",
    "holdout",
    "true_mi",
    "upper_bound",
    "ref_lower",
    "ref_upper",
    "ref_mc",
    "rel_err",
    "certified",
    "status",
    "seconds",
]


def _worst(statuses) -> str:
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, len(STATUS_ORDER)))


def figure1_table(records: Iterable[dict[str, Any]], references: dict[str, dict] | None = None):
    """Mean, std and count over seeds of each (panel, estimator, sigma2), with the references.

    Columns (:data:`TABLE_COLUMNS`): mean, std (NaN for one seed), n (seeds), holdout (held-out N),
    true_mi (panel b, Eq. 5; inf at sigma2 = 0; NaN in panel a), upper_bound (panel a, mean over
    seeds of the stored Gaussian bound; NaN in panel b), ref_lower / ref_upper / ref_mc (panel a,
    means over seeds of the exact references; NaN without them), rel_err ((mean - true_mi) /
    true_mi where true_mi is finite), certified (seeds whose estimate is certified), status (the
    worst seed's status), seconds. Sorted by panel, estimator, sigma2.
    """
    import numpy as np
    import pandas as pd

    frame = figure1_frame(records, references)
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    keys = ["panel", "estimator", "sigma2"]
    grouped = frame.groupby(keys, sort=True)
    table = grouped.agg(
        mean=("mi", "mean"),
        std=("mi", "std"),
        n=("mi", "size"),
        holdout=("n", "min"),
        true_mi=("true_mi", "first"),
        upper_bound=("upper_bound", "mean"),
        ref_lower=("ref_lower", "mean"),
        ref_upper=("ref_upper", "mean"),
        ref_mc=("ref_mc", "mean"),
        certified=("status", lambda s: int((s == CERTIFIED).sum())),
        status=("status", _worst),
        seconds=("seconds", "mean"),
    ).reset_index()
    finite = np.isfinite(table["true_mi"]) & (table["true_mi"] > 0)
    table["rel_err"] = np.where(finite, (table["mean"] - table["true_mi"]) / table["true_mi"], np.nan)
    order = {e: k for k, e in enumerate(ALL_ESTIMATORS)}
    table = table.sort_values(
        ["panel", "estimator", "sigma2"], key=lambda s: s.map(order) if s.name == "estimator" else s
    )
    return table[TABLE_COLUMNS].reset_index(drop=True)


def log_slope(sigma2: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against log(1/sigma^2) (nats per e-fold of 1/sigma^2);
    NaN with fewer than two distinct sigma^2 > 0."""
    import numpy as np

    s2 = np.asarray(sigma2, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = (s2 > 0) & np.isfinite(v)
    if len(np.unique(s2[keep])) < 2:
        return math.nan
    return float(np.polyfit(np.log(1 / s2[keep]), v[keep], 1)[0])


def figure1_summary(table) -> dict[str, Any]:
    """The key numbers of Figure 1 from :func:`figure1_table` (NaN where a panel is absent).

    Certified values only decide (issue 10):

    - ``certified_sigma2``: the sigma^2 > 0 of panel a at which every seed of both estimators is
      certified; ``aa_slope``, ``mine_slope``, ``ref_slope``: least-squares slopes over them of
      AA-MINE's and MINE's means and of the exact (Monte Carlo) reference against log(1/sigma^2);
    - ``aa_monotone``: AA-MINE's mean decreases (non-strictly) along its certified sigma^2 > 0
      (None with fewer than two);
    - ``aa_above_bound`` / ``aa_above_log_n``: the sigma^2 where some seed of AA-MINE is above an
      upper bound / above log N only; ``uncertified``: count of uncertified rows per estimator;
    - ``aa_zero``, ``mine_zero``, ``zero_status``: panel a at sigma^2 = 0 (reported, never judged:
      AA-MINE's value there is set by its critic's scale floor);
    - ``below_lower``: per estimator, the sigma^2 > 0 of panel a where its mean lies below the exact
      (Bhattacharyya) lower bound (certified, but an under-estimate);
    - ``log_n``: log of the held-out N of panel a; ``sigma2_max``, ``aa_max``, ``mine_max``;
    - ``aa_max_rel_err``, ``mine_max_rel_err``, ``tied_max_rel_err``, ``aa_worst_sigma2``: panel b
      against Eq. 5 over sigma^2 > 0 (``tied``: AA-MINE with the training critic, when run).
    """
    import numpy as np

    nan = float("nan")
    out: dict[str, Any] = {
        "aa_zero": nan,
        "mine_zero": nan,
        "zero_status": {},
        "aa_max": nan,
        "mine_max": nan,
        "sigma2_max": nan,
        "log_n": nan,
        "certified_sigma2": [],
        "aa_slope": nan,
        "mine_slope": nan,
        "ref_slope": nan,
        "aa_monotone": None,
        "aa_certified_sigma2": [],
        "aa_above_bound": [],
        "aa_above_log_n": [],
        "uncertified": {},
        "aa_max_rel_err": nan,
        "mine_max_rel_err": nan,
        "aa_worst_sigma2": nan,
        "tied_max_rel_err": nan,
        "below_lower": {},
    }

    def rows(panel: str, est: str):
        part = table[(table["panel"] == panel) & (table["estimator"] == est)]
        return part.sort_values("sigma2").set_index("sigma2")

    aa, mine = rows("a", "aamine"), rows("a", "mine")
    for est, part in (("aamine", aa), ("mine", mine)):
        if len(part):
            out["uncertified"][est] = int((part["status"] != CERTIFIED).sum())
        if 0.0 in part.index:
            out["zero_status"][est] = str(part.loc[0.0, "status"])
    if len(aa):
        out["sigma2_max"] = float(aa.index.max())
        out["aa_max"] = float(aa["mean"].iloc[-1])
        out["log_n"] = math.log(int(aa["holdout"].min())) if aa["holdout"].min() > 0 else nan
        if 0.0 in aa.index:
            out["aa_zero"] = float(aa.loc[0.0, "mean"])
        pos = aa[aa.index > 0]
        out["aa_above_bound"] = sorted(float(s) for s in pos.index[pos["status"] == ABOVE_UPPER])
        out["aa_above_log_n"] = sorted(float(s) for s in pos.index[pos["status"] == ABOVE_LOG_N])
        certified = pos[pos["status"] == CERTIFIED]
        out["aa_certified_sigma2"] = [float(s) for s in certified.index]
        if len(certified) >= 2:
            out["aa_monotone"] = bool(np.all(np.diff(certified["mean"].to_numpy()) <= 0))
    for est, part in (("aamine", aa), ("mine", mine)):
        pos = part[part.index > 0]
        if len(pos) and pos["ref_lower"].notna().any():
            out["below_lower"][est] = [float(s) for s in pos.index[pos["mean"] < pos["ref_lower"]]]
    if len(mine):
        out["mine_max"] = float(mine["mean"].iloc[-1])
        if 0.0 in mine.index:
            out["mine_zero"] = float(mine.loc[0.0, "mean"])
    if len(aa) and len(mine):
        both = [
            float(s)
            for s in aa.index
            if s > 0
            and s in mine.index
            and aa.loc[s, "status"] == CERTIFIED
            and mine.loc[s, "status"] == CERTIFIED
        ]
        out["certified_sigma2"] = both
        if len(both) >= 2:
            out["aa_slope"] = log_slope(both, aa.loc[both, "mean"])
            out["mine_slope"] = log_slope(both, mine.loc[both, "mean"])
            out["ref_slope"] = log_slope(both, aa.loc[both, "ref_mc"])
    for est, key in (
        ("aamine", "aa_max_rel_err"),
        ("mine", "mine_max_rel_err"),
        ("tied", "tied_max_rel_err"),
    ):
        part = table[(table["panel"] == "b") & (table["estimator"] == est) & np.isfinite(table["rel_err"])]
        if len(part):
            worst = part.loc[part["rel_err"].abs().idxmax()]
            out[key] = float(abs(worst["rel_err"]))
            if est == "aamine":
                out["aa_worst_sigma2"] = float(worst["sigma2"])
    return out


def truth_excess(frame) -> tuple[int, float]:
    """Panel b of :func:`figure1_frame`: (number of estimates above Eq. 5 at sigma^2 > 0, the
    largest relative excess); (0, NaN) when none."""
    b = frame[(frame["panel"] == "b") & (frame["sigma2"] > 0) & (frame["mi"] > frame["true_mi"])]
    if b.empty:
        return 0, math.nan
    return len(b), float(((b["mi"] - b["true_mi"]) / b["true_mi"]).max())


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def _grid(values: Sequence[float]) -> str:
    return ", ".join(_fmt(v) for v in values) if values else "none"


def figure1_verdict(summary: dict[str, Any]) -> str:
    """A Markdown paragraph stating what the numbers show, built only from ``summary``."""
    lines = []
    log_n = summary.get("log_n", math.nan)
    if not math.isnan(summary["aa_zero"]):
        lines.append(
            f"- σ² = 0: the true MI is infinite for a continuous input (log N = {_fmt(log_n)} nats for X "
            f"uniform over the held-out samples). AA-MINE's DV value there ({_fmt(summary['aa_zero'])} nats, "
            f"{summary['zero_status'].get('aamine', 'n/a')}) is set by the floor of its critic's scale, "
            f"not by the data: it is drawn as “→ ∞” and judges nothing. MINE: {_fmt(summary['mine_zero'])} "
            f"nats ({summary['zero_status'].get('mine', 'n/a')})."
        )
    if summary["aa_monotone"] is not None or summary["aa_above_bound"] or summary["aa_above_log_n"]:
        lines.append(
            f"- Uncertified AA-MINE values at σ² > 0: above an upper bound at σ² = "
            f"{_grid(summary['aa_above_bound'])}; above log N only at σ² = "
            f"{_grid(summary['aa_above_log_n'])}. They are drawn hollow and judge nothing."
        )
    panel_a = not math.isnan(summary["sigma2_max"])
    if summary["aa_monotone"] is not None:
        lines.append(
            "- AA-MINE decreases as σ² grows, over its certified σ² = "
            f"{_grid(summary['aa_certified_sigma2'])}: **{'yes' if summary['aa_monotone'] else 'no'}**."
        )
    elif panel_a:
        lines.append(
            "- AA-MINE decreases as σ² grows: not measurable (certified at σ² = "
            f"{_grid(summary['aa_certified_sigma2'])}; two are needed)."
        )
    if not math.isnan(summary["aa_slope"]):
        lines.append(
            "- Growth as σ² → 0, over the σ² where both are certified "
            f"({_grid(summary['certified_sigma2'])}): "
            f"AA-MINE rises {_fmt(summary['aa_slope'])} nats per e-fold of 1/σ², MINE "
            f"{_fmt(summary['mine_slope'])}, the exact value {_fmt(summary['ref_slope'])}."
        )
    elif panel_a:
        lines.append(
            "- Growth as σ² → 0: not measurable (fewer than two σ² > 0 where both estimators are certified)."
        )
    below = summary.get("below_lower", {})
    if below:
        lines.append(
            "- Below the exact (Bhattacharyya) lower bound, i.e. certified but under-estimating: "
            + "; ".join(f"{ESTIMATOR_LABELS[e]} at σ² = {_grid(v)}" for e, v in below.items())
            + "."
        )
    if not math.isnan(summary["aa_max_rel_err"]):
        lines.append(
            f"- Linear-Gaussian check (panel b), largest error vs Eq. 5 over σ² > 0: "
            f"AA-MINE {100 * summary['aa_max_rel_err']:.1f} % (at σ² = {_fmt(summary['aa_worst_sigma2'])}), "
            f"MINE {100 * summary['mine_max_rel_err']:.1f} %"
            + (
                f", AA-MINE with the training critic {100 * summary['tied_max_rel_err']:.1f} %."
                if not math.isnan(summary.get("tied_max_rel_err", math.nan))
                else "."
            )
        )
    return "\n".join(lines) if lines else "No records to judge."


def figure1_display_table(table):
    """:func:`figure1_table` as strings for a page: "mean ± std", status, references, error."""
    import pandas as pd

    columns = [
        "panel",
        "σ²",
        "estimator",
        "estimate [nats]",
        "status",
        "exact reference [nats]",
        "Gaussian bound [nats]",
        "rel. error",
        "seeds",
    ]
    if table.empty:
        return pd.DataFrame(columns=columns)

    def pm(row) -> str:
        if row["panel"] == "a" and row["estimator"] != "mine" and row["sigma2"] == 0:
            return f"→ ∞ (DV value {_fmt(row['mean'])}: the critic's scale floor)"
        mean, std = _fmt(row["mean"]), row["std"]
        return mean if not (isinstance(std, float) and math.isfinite(std)) else f"{mean} ± {_fmt(std)}"

    def status(row) -> str:
        n = int(row["n"])
        text = row["status"]
        if row["certified"] not in (0, n):
            text += f" ({int(row['certified'])} of {n} seeds certified)"
        return text

    def reference(row) -> str:
        if row["panel"] == "b":
            return f"{_fmt(row['true_mi'])} (Eq. 5)"
        if math.isnan(row["ref_lower"]):
            return "not computed"
        if row["sigma2"] == 0:
            return f"{_fmt(row['ref_mc'])} = log N (∞ for continuous X)"
        return f"[{_fmt(row['ref_lower'])}, {_fmt(row['ref_upper'])}], MC {_fmt(row['ref_mc'])}"

    return pd.DataFrame(
        {
            "panel": table["panel"],
            "σ²": [_fmt(s) for s in table["sigma2"]],
            "estimator": [ESTIMATOR_LABELS.get(e, e) for e in table["estimator"]],
            "estimate [nats]": table.apply(pm, axis=1),
            "status": table.apply(status, axis=1),
            "exact reference [nats]": table.apply(reference, axis=1),
            "Gaussian bound [nats]": [
                "" if p == "b" else _fmt(u) for p, u in zip(table["panel"], table["upper_bound"], strict=True)
            ],
            "rel. error": [f"{100 * r:+.1f} %" if math.isfinite(r) else "" for r in table["rel_err"]],
            "seeds": table["n"].astype(int),
        }
    )[columns]
