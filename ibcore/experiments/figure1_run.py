"""Running Figure 1: the measured layers of each panel, the estimator of each configuration and
one record per configuration (:func:`run_figure1`, through :func:`ibcore.core.results.run_all`)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.data import load_dataset
from ibcore.core.estimators import AAMINE, MINE, NeuralEstimator, PenaltyAAMINE, TiedAAMINE
from ibcore.core.estimators import TiedInputCritic as TiedInputCritic  # moved to core; re-exported
from ibcore.core.models import mlp
from ibcore.core.results import environment, run_all
from ibcore.core.runtime import resolve_device
from ibcore.experiments.figure1_configs import KIND, figure1_configs

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
        **config.get("early_stopping", {}),
    )
    if config["estimator"] == "aamine_penalty":
        return PenaltyAAMINE(network, **kwargs)
    if config["estimator"] == "aamine":
        return AAMINE(network, copy_lr_factor=config["copy_lr_factor"], **kwargs)
    if config["estimator"] == "tied":
        return TiedAAMINE(network, **kwargs)
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
        curves = {"steps": estimate.curve_steps, "dv_train": estimate.curve}
        if "early_stopping" in config:
            metrics["stop_step"] = estimate.stop_step
            metrics["best_step"] = estimate.best_step
            curves.update(valid_steps=estimate.valid_steps, dv_valid=estimate.valid_curve)
        return {
            "metrics": metrics,
            "curves": curves,
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
