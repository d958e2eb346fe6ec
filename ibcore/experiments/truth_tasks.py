"""The tasks of the known-truth battery (issue 10, item 5): samples with exact mutual information.

- ``gauss``: correlated Gaussians, x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) n, so
  I(X; Y) = -d/2 log(1 - rho^2);
- ``linear``: the linear-Gaussian layer of Eq. 5, Y = W X + eps, I(X; Y) in closed form
  (:func:`ibcore.core.analytic.linear_gaussian_mi`);
- ``mnist``: X uniform over N MNIST images, Y = L_1(X) + eps; I(X; Y) lies between the exact
  Bhattacharyya and pairwise-KL bounds (:func:`ibcore.core.bounds.mixture_mi_bounds`);
- ``label``: I(Y; L) for a uniform label Y of K classes and L | Y = k ~ N(mu_k, I_d), the
  quantity the label MINE measures in training (I(Y; L_i)); the truth
  I = log K - E_L[H(Y | L)] is a Monte Carlo mean over 10^6 draws with the known densities,
  with its standard error (:func:`label_mixture_mi`);
- any of them through an invertible per-coordinate map of each side (``map``: "cube",
  x -> x^3): the MI does not change, the marginals get heavy tails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.bounds import mixture_mi_bounds


def apply_map(a: np.ndarray, name: str | None) -> np.ndarray:
    """An invertible per-coordinate map: None (identity) or "cube" (x -> x^3, heavy tails)."""
    if name is None:
        return a
    if name == "cube":
        return a**3
    raise ValueError(f"unknown map {name!r}; use None or 'cube'")


def task_list(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The battery's task descriptions (JSON-serialisable; they enter the record configs)."""
    tasks = []
    for g in params.get("gauss", []):
        name = f"gauss d={g['d']} I={g['mi']:g}" + (f" {g['map']}" if g.get("map") else "")
        tasks.append({"task": name, "family": "gauss", "d": g["d"], "mi": g["mi"], "map": g.get("map")})
    lin = params.get("linear")
    if lin:
        for s2 in lin["sigma2"]:
            tasks.append(
                {
                    "task": f"linear s2={s2:g}",
                    "family": "linear",
                    "d_in": lin["d_in"],
                    "d_out": lin["d_out"],
                    "sigma2": s2,
                    "map": None,
                }
            )
        for s2 in lin.get("map_sigma2", []):
            tasks.append(
                {
                    "task": f"linear s2={s2:g} cube",
                    "family": "linear",
                    "d_in": lin["d_in"],
                    "d_out": lin["d_out"],
                    "sigma2": s2,
                    "map": "cube",
                }
            )
    for lab in params.get("label", []):
        k = lab.get("classes", 10)
        tasks.append(
            {
                "task": f"label d={lab['d']} K={k} sep={lab['sep']:g}",
                "family": "label",
                "d": lab["d"],
                "classes": k,
                "sep": lab["sep"],
                "map": None,
            }
        )
    mn = params.get("mnist")
    if mn:
        for r in mn["noise_ratio"]:
            tasks.append(
                {
                    "task": f"mnist L1 N={mn['n_images']} noise={r:g}",
                    "family": "mnist",
                    "n_images": mn["n_images"],
                    "widths": list(mn["widths"]),
                    "train_steps": mn["train_steps"],
                    "noise_ratio": r,
                    "map": None,
                }
            )
    return tasks


def linear_weight(d_out: int, d_in: int) -> torch.Tensor:
    """The fixed weight of the linear-Gaussian task (seed 1234), rows of unit norm."""
    w = torch.randn(d_out, d_in, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)
    return w / w.norm(dim=1, keepdim=True)


_MNIST_CACHE: dict[tuple, tuple] = {}


def mnist_layer(task: dict[str, Any], data_dir: str | None = None) -> tuple[torch.Tensor, nn.Module, float]:
    """(images [N, 784], layer 1 of a briefly trained MLP, sigma^2) for an ``mnist`` task.

    The MLP (``widths``) is trained for ``train_steps`` Adam steps (batch 64, seed 0) on the N
    images; sigma^2 is ``noise_ratio`` times the mean per-coordinate variance of L_1.
    """
    from ibcore.core.data import load_dataset
    from ibcore.core.models import mlp

    key = (task["n_images"], tuple(task["widths"]), task["train_steps"], data_dir)
    if key not in _MNIST_CACHE:
        data = load_dataset("mnist", data_dir=data_dir, device="cpu")
        x = data.x_train[: task["n_images"]].flatten(1).float()
        y = data.y_train[: task["n_images"]]
        torch.manual_seed(0)
        net = mlp(task["widths"])
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        for _ in range(task["train_steps"]):
            idx = torch.randint(x.shape[0], (64,), generator=gen)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        layer = net.prefix(1).eval().requires_grad_(False)
        with torch.no_grad():
            var = float(layer(x).var(0).mean())
        _MNIST_CACHE[key] = (x, layer, var)
    x, layer, var = _MNIST_CACHE[key]
    return x, layer, task["noise_ratio"] * var


def label_means(d: int, classes: int, sep: float) -> np.ndarray:
    """Class means of the ``label`` task [K, d]: equally spaced ``sep`` apart and centred (d = 1),
    else ``sep`` times K random unit vectors (seed 1234)."""
    if d == 1:
        return sep * (np.arange(classes) - (classes - 1) / 2)[:, None]
    mu = np.random.default_rng(1234).standard_normal((classes, d))
    return sep * mu / np.linalg.norm(mu, axis=1, keepdims=True)


def label_posterior_entropy(l: np.ndarray, means: np.ndarray) -> np.ndarray:  # noqa: E741
    """H(Y | L = l) in nats for each row of ``l``: Y uniform over the K classes, L | k ~ N(mu_k, I)."""
    logits = -0.5 * ((l**2).sum(1, keepdims=True) - 2 * l @ means.T + (means**2).sum(1))
    logits -= logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -(np.exp(logp) * logp).sum(1)


_LABEL_TRUTH: dict[tuple, tuple[float, float]] = {}


def label_mixture_mi(
    d: int, classes: int, sep: float, draws: int = 1_000_000, seed: int = 4321
) -> tuple[float, float]:
    """(I(Y; L), its Monte Carlo standard error) in nats for the ``label`` task.

    I = H(Y) - H(Y | L) = log K - E_L[H(Y | L)], the expectation a mean over ``draws`` samples
    of (Y, L) with the posterior computed from the known densities (Rao-Blackwellised: lower
    variance than E[log p(l | y) - log p(l)]). Chunks of 10^5 rows; cached per task.
    """
    key = (d, classes, sep, draws, seed)
    if key not in _LABEL_TRUTH:
        means = label_means(d, classes, sep)
        rng = np.random.default_rng(seed)
        total, total_sq, done = 0.0, 0.0, 0
        while done < draws:
            m = min(100_000, draws - done)
            y = rng.integers(classes, size=m)
            terms = math.log(classes) - label_posterior_entropy(means[y] + rng.standard_normal((m, d)), means)
            total += float(terms.sum())
            total_sq += float((terms**2).sum())
            done += m
        mean = total / draws
        se = math.sqrt(max(total_sq / draws - mean**2, 0.0) / draws)
        _LABEL_TRUTH[key] = (mean, se)
    return _LABEL_TRUTH[key]


def make_samples(task: dict[str, Any], n: int, seed: int, data_dir: str | None = None) -> dict[str, Any]:
    """Samples of a task: ``x``, ``y`` (NumPy, float64; for ``label``, x is L and y the integer
    labels), the truth (``truth``, ``truth_low``, ``truth_high``; ``truth_se`` for ``label``)
    and, for layer tasks, ``clean`` (the noiseless layer output for x), ``noise_std`` and
    ``network`` (what MINE and AA-MINE need)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    if task["family"] == "gauss":
        d, mi = task["d"], task["mi"]
        rho = math.sqrt(-math.expm1(-2 * mi / d))
        x = rng.standard_normal((n, d))
        y = rho * x + math.sqrt(math.exp(-2 * mi / d)) * rng.standard_normal((n, d))
        out.update(truth=mi, truth_low=mi, truth_high=mi)
    elif task["family"] == "linear":
        w = linear_weight(task["d_out"], task["d_in"])
        x = rng.standard_normal((n, task["d_in"]))
        clean = x @ w.numpy().T
        std = math.sqrt(task["sigma2"])
        y = clean + std * rng.standard_normal(clean.shape)
        mi = linear_gaussian_mi(w, torch.eye(task["d_in"], dtype=torch.float64), task["sigma2"])
        net = nn.Linear(task["d_in"], task["d_out"], bias=False)
        with torch.no_grad():
            net.weight.copy_(w.float())
        out.update(truth=mi, truth_low=mi, truth_high=mi, clean=clean, noise_std=std, network=net)
    elif task["family"] == "mnist":
        images, layer, sigma2 = mnist_layer(task, data_dir)
        with torch.no_grad():
            feats = layer(images).double()
        lo, hi = mixture_mi_bounds(feats, sigma2)
        idx = rng.integers(0, images.shape[0], n)
        x = images[idx].double().numpy()
        clean = feats[idx].numpy()
        std = math.sqrt(sigma2)
        y = clean + std * rng.standard_normal(clean.shape)
        out.update(
            truth=0.5 * (lo + hi),
            truth_low=lo,
            truth_high=hi,
            clean=clean,
            noise_std=std,
            network=layer,
            sigma2=sigma2,
        )
    elif task["family"] == "label":
        means = label_means(task["d"], task["classes"], task["sep"])
        y = rng.integers(task["classes"], size=n)
        x = means[y] + rng.standard_normal((n, task["d"]))
        mi, se = label_mixture_mi(task["d"], task["classes"], task["sep"])
        out.update(truth=mi, truth_low=mi, truth_high=mi, truth_se=se, classes=task["classes"])
        out["mapped"] = False
        out["x"], out["y"] = x, y  # x: the continuous L, y: integer labels (never mapped)
        return out
    else:
        raise ValueError(f"unknown task family {task['family']!r}")
    out["mapped"] = task.get("map") is not None
    out["x"] = apply_map(x, task.get("map"))
    out["y"] = apply_map(y, task.get("map"))
    return out


def task_dims(task: dict[str, Any]) -> tuple[int, int]:
    """(dimension of x, dimension of y) of a task's samples."""
    if task["family"] == "gauss":
        return task["d"], task["d"]
    if task["family"] == "linear":
        return task["d_in"], task["d_out"]
    if task["family"] == "label":
        return task["d"], 1
    return 784, task["widths"][1]
