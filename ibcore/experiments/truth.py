"""The estimators against known truth (issue 10, item 5; issue 15, item 4).

A battery of tasks whose mutual information is known exactly (or bracketed by exact bounds):

- ``gauss``: correlated Gaussians, x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) n, so
  I(X; Y) = -d/2 log(1 - rho^2), from 0.1 to 10 nats in several dimensions d;
- ``linear``: the linear-Gaussian layer of Eq. 5, X ~ N(0, I), L = W X, Y = L + eps with
  eps ~ N(0, sigma^2 I); I(X; Y) in closed form (:func:`ibcore.core.analytic.linear_gaussian_mi`);
- the same samples pushed through an invertible per-coordinate map of each side (``map``:
  "cube", x -> x^3, heavy tails): the MI does not change, the marginals do;
- ``mnist``: X uniform over N MNIST images, Y = L_1(X) + eps for the first layer of a briefly
  trained MLP; I(X; Y) lies between the exact Bhattacharyya and pairwise-KL bounds
  (:mod:`ibcore.core.bounds`), and below log N.

Every estimator the project reports runs on the same samples: the project's MINE and AA-MINE
(:mod:`ibcore.core.estimators`, fixed step budget), :func:`ibcore.estimate_mi` with each method, and
the peers: torch-mist's SMILE when it imports beside our torch (optional), scikit-learn's KSG
``mutual_info_regression`` on 1-D tasks. One record per (task, estimator, seed) is stored under
``<results_dir>/truth/`` (:func:`ibcore.core.results.write_record`); :func:`run_battery` skips the
stored ones and :func:`battery_summary` gives bias in %, spread over seeds and time.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.bounds import mi_status, mixture_mi_bounds
from ibcore.core.estimators import AAMINE, MINE
from ibcore.core.mi import estimate_mi
from ibcore.core.results import environment, load_records, run_all
from ibcore.core.runtime import resolve_device

KIND = "truth"
VERSION = 1  # part of every config: bump when a task or an estimator changes meaning

ESTIMATORS = (
    "smile",  # ibcore.estimate_mi methods
    "mine",
    "infonce",
    "ksg",
    "MINE",  # the project's estimator classes, full step budget
    "AA-MINE",
    "AA-MINE frozen",
    "torch-mist smile",  # peers
    "sklearn KSG",
)

#: Sizes: "tiny" for the tests (< 30 s on one CPU thread), "default" (minutes on a CPU),
#: "paper" (the full battery, for a GPU or a long CPU run).
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "n": 2000,
        "seeds": [0],
        "gauss": [{"d": 1, "mi": 1.0}, {"d": 1, "mi": 1.0, "map": "cube"}, {"d": 3, "mi": 2.0}],
        "linear": {"d_in": 4, "d_out": 3, "sigma2": [0.1]},
        "mnist": {"n_images": 200, "widths": [784, 16, 10], "train_steps": 20, "noise_ratio": [1.0]},
        "estimators": ["smile", "ksg", "MINE", "AA-MINE", "sklearn KSG"],
        "neural": {"hidden": [64], "batch_size": 128, "max_steps": 300, "min_steps": 100, "eval_every": 50},
        "mine_steps": 300,
        "mine_batch": 128,
        "ksg_max_dim": 12,
    },
    "default": {
        "n": 5000,
        "seeds": [0, 1],
        "gauss": [
            {"d": 1, "mi": 1.0},
            {"d": 1, "mi": 4.0},
            {"d": 5, "mi": 2.0},
            {"d": 5, "mi": 10.0},
            {"d": 1, "mi": 1.0, "map": "cube"},
            {"d": 5, "mi": 2.0, "map": "cube"},
        ],
        "linear": {"d_in": 10, "d_out": 5, "sigma2": [0.01, 1.0]},
        "mnist": {"n_images": 1000, "widths": [784, 64, 10], "train_steps": 200, "noise_ratio": [1.0]},
        "estimators": ["smile", "ksg", "MINE", "AA-MINE", "torch-mist smile", "sklearn KSG"],
        "neural": {"max_steps": 2000},
        "mine_steps": 1000,
        "mine_batch": 256,
        "ksg_max_dim": 15,
    },
    "paper": {
        "n": 10000,
        "seeds": [0, 1, 2],
        "gauss": [
            *({"d": d, "mi": m} for d in (1, 3, 5, 10) for m in (0.1, 1.0, 2.0, 4.0, 10.0)),
            *({"d": d, "mi": m, "map": "cube"} for d in (1, 3, 5) for m in (1.0, 2.0, 4.0)),
        ],
        "linear": {"d_in": 10, "d_out": 5, "sigma2": [0.001, 0.01, 0.1, 1.0], "map_sigma2": [0.1]},
        "mnist": {
            "n_images": 2000,
            "widths": [784, 256, 10],
            "train_steps": 500,
            "noise_ratio": [0.1, 0.3, 1.0, 3.0],
        },
        "estimators": list(ESTIMATORS),
        "neural": {},
        "mine_steps": 2000,
        "mine_batch": 256,
        "ksg_max_dim": 20,
    },
}


def battery_params(profile: str = "tiny", **overrides: Any) -> dict[str, Any]:
    """The size parameters of ``profile`` ("tiny", "default", "paper") with ``overrides``."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not one of {sorted(PROFILES)}")
    params = copy.deepcopy(PROFILES[profile])
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"unknown battery parameters {sorted(unknown)}; known: {sorted(params)}")
    params.update(copy.deepcopy(overrides))
    bad = set(params["estimators"]) - set(ESTIMATORS)
    if bad:
        raise ValueError(f"unknown estimators {sorted(bad)}; choose from {ESTIMATORS}")
    return params


# -- tasks -----------------------------------------------------------------------------------
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


def make_samples(task: dict[str, Any], n: int, seed: int, data_dir: str | None = None) -> dict[str, Any]:
    """Samples of a task: ``x``, ``y`` (NumPy, float64), the truth (``truth``, ``truth_low``,
    ``truth_high``) and, for layer tasks, ``clean`` (the noiseless layer output for x),
    ``noise_std`` and ``network`` (what MINE and AA-MINE need)."""
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
    else:
        raise ValueError(f"unknown task family {task['family']!r}")
    out["mapped"] = task.get("map") is not None
    out["x"] = apply_map(x, task.get("map"))
    out["y"] = apply_map(y, task.get("map"))
    return out


def applicable(task: dict[str, Any], estimator: str, params: dict[str, Any]) -> bool:
    """Whether ``estimator`` runs on ``task`` (AA-MINE needs a known network and no map; the
    KSG peer is 1-D only; KSG needs few dimensions; torch-mist must import)."""
    dims = _dims(task)
    if estimator.startswith("AA-MINE"):
        return task["family"] in ("linear", "mnist") and task.get("map") is None
    if estimator == "sklearn KSG":
        return dims == (1, 1)
    if estimator == "ksg":
        return sum(dims) <= params["ksg_max_dim"]
    if estimator == "torch-mist smile":
        return torch_mist_available()
    return True


def _dims(task: dict[str, Any]) -> tuple[int, int]:
    if task["family"] == "gauss":
        return task["d"], task["d"]
    if task["family"] == "linear":
        return task["d_in"], task["d_out"]
    return 784, task["widths"][1]


def torch_mist_available() -> bool:
    """True when the optional peer torch-mist imports beside our torch."""
    try:
        import torch_mist  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means the peer is unavailable
        return False
    return True


# -- estimators ------------------------------------------------------------------------------
def run_estimator(
    estimator: str, s: dict[str, Any], params: dict[str, Any], seed: int, device: torch.device
) -> dict[str, Any]:
    """Run one estimator on one task's samples; returns value, wall and CPU time, stopping step, CI.

    ``cpu_time`` (process CPU seconds) is the time per estimate on an unshared core when torch
    runs one thread; ``wall_time`` also counts waiting for a shared CPU.
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict[str, Any] = {"stop_step": None, "ci_low": None, "ci_high": None}
    if estimator in ("smile", "mine", "infonce", "ksg"):
        opts = {} if estimator == "ksg" else {**params["neural"]}
        if "hidden" in opts:
            opts["hidden"] = tuple(opts["hidden"])
        dev = "cpu" if estimator == "ksg" else device
        est = estimate_mi(s["x"], s["y"], estimator, seed=seed, device=dev, **opts)
        out.update(
            value=est.value,
            stop_step=est.stop_step or None,
            ci_low=est.ci_low,
            ci_high=est.ci_high,
            n_eval=est.holdout_size,
        )
    elif estimator in ("MINE", "AA-MINE", "AA-MINE frozen"):
        kw = dict(steps=params["mine_steps"], batch_size=params["mine_batch"], seed=seed, device=device)
        x = torch.as_tensor(s["x"], dtype=torch.float32)
        if "clean" in s and not s["mapped"]:  # a layer: the estimator adds fresh noise itself
            v = torch.as_tensor(s["clean"], dtype=torch.float32)
            kw["noise_std"] = s["noise_std"]
        else:
            v = torch.as_tensor(s["y"], dtype=torch.float32)
        if estimator == "MINE":
            est_obj = MINE(**kw)
        else:
            est_obj = AAMINE(s["network"], copy_lr_factor=0.0 if estimator.endswith("frozen") else 0.1, **kw)
        est = est_obj.estimate(x, v)
        out.update(value=est.value, stop_step=params["mine_steps"], n_eval=est.holdout_size)
    elif estimator == "torch-mist smile":
        from torch_mist import estimate_mi as tm_estimate_mi

        n = s["x"].shape[0]
        order = np.random.default_rng(seed).permutation(n)
        n_test = int(round(0.2 * n))
        te, tr = order[:n_test], order[n_test:]
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32).reshape(a.shape[0], -1)  # noqa: E731
        torch.manual_seed(seed)
        value = tm_estimate_mi(
            data=(as_t(s["x"][tr]), as_t(s["y"][tr])),
            test_data=(as_t(s["x"][te]), as_t(s["y"][te])),
            estimator="smile",
            hidden_dims=[128],
            verbose=False,
            logger=False,
            device=str(device),
        )
        out.update(value=float(value), n_eval=n_test)
    elif estimator == "sklearn KSG":
        from sklearn.feature_selection import mutual_info_regression

        value = mutual_info_regression(
            s["x"].reshape(-1, 1), s["y"].reshape(-1), n_neighbors=3, random_state=seed
        )[0]
        out.update(value=float(value), n_eval=s["x"].shape[0])
    else:
        raise ValueError(f"unknown estimator {estimator!r}; choose from {ESTIMATORS}")
    out["wall_time"] = time.perf_counter() - t0
    out["cpu_time"] = time.process_time() - c0
    return out


def bias_pct(value: float, low: float, high: float) -> float:
    """Bias in % of the truth; for a bracketed truth [low, high], the distance to the nearer end
    in % of that end (0 inside the bracket)."""
    if low == high:
        return 100.0 * (value - low) / low
    if value < low:
        return 100.0 * (value - low) / low
    if value > high:
        return 100.0 * (value - high) / high
    return 0.0


def battery_configs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """One config per applicable (task, estimator, seed)."""
    configs = []
    for task in task_list(params):
        for estimator in params["estimators"]:
            if not applicable(task, estimator, params):
                continue
            est_params: dict[str, Any] = {}
            if estimator in ("smile", "mine", "infonce"):
                est_params = {"neural": params["neural"]}
            elif estimator in ("MINE", "AA-MINE", "AA-MINE frozen"):
                est_params = {"steps": params["mine_steps"], "batch_size": params["mine_batch"]}
            for seed in params["seeds"]:
                configs.append(
                    {
                        "version": VERSION,
                        **task,
                        "n": params["n"],
                        "estimator": estimator,
                        "estimator_params": est_params,
                        "seed": seed,
                    }
                )
    return configs


def run_battery(
    params: dict[str, Any],
    results_dir: str | os.PathLike = "results/tiny",
    device: str | torch.device = "cpu",
    data_dir: str | None = None,
    progress: bool = False,
) -> list[dict]:
    """Run every (task, estimator, seed) of ``params`` not yet stored; return all their records.

    Records: ``<results_dir>/truth/<hash>.json`` with metrics ``value``, ``truth``,
    ``truth_low``, ``truth_high``, ``bias_pct``, ``wall_time``, ``stop_step``, ``status``
    (:func:`ibcore.core.bounds.mi_status` against log of the samples it was evaluated on).
    """
    dev = resolve_device(device)
    cache: dict[tuple, dict] = {}

    def run_one(config: dict[str, Any]) -> dict[str, Any]:
        key = (config["task"], config["n"], config["seed"])
        if key not in cache:
            cache.clear()  # configs come grouped by task; keep one task's samples
            cache[key] = make_samples(config, config["n"], config["seed"], data_dir)
        s = cache[key]
        out = run_estimator(config["estimator"], s, params, config["seed"], dev)
        upper = s["truth_high"] if config["family"] == "mnist" else None
        metrics = {
            **out,
            "truth": s["truth"],
            "truth_low": s["truth_low"],
            "truth_high": s["truth_high"],
            "bias_pct": bias_pct(out["value"], s["truth_low"], s["truth_high"]),
            "status": mi_status(out["value"], int(out["n_eval"]), upper),
        }
        return {"metrics": metrics, "environment": environment(dev), "timings": {"wall": out["wall_time"]}}

    return run_all(results_dir, KIND, battery_configs(params), run_one, progress=progress)


def battery_frame(records: Iterable[dict]):
    """One row per record: task, estimator, seed, value, truth (low, high), bias %, time, steps."""
    import pandas as pd

    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        rows.append(
            {
                "task": c["task"],
                "family": c["family"],
                "map": c.get("map"),
                "estimator": c["estimator"],
                "seed": c["seed"],
                "n": c["n"],
                "value": m["value"],
                "truth": m["truth"],
                "truth_low": m["truth_low"],
                "truth_high": m["truth_high"],
                "bias_pct": m["bias_pct"],
                "wall_time": m["wall_time"],
                "cpu_time": m.get("cpu_time", float("nan")),
                "stop_step": m.get("stop_step"),
                "status": m.get("status"),
            }
        )
    return pd.DataFrame(rows)


def battery_summary(records: Iterable[dict]):
    """Per (task, estimator): mean bias %, its spread (sd over seeds), mean |bias| %, seconds per
    estimate, mean stopping step, seeds. A DataFrame indexed by task and estimator."""
    frame = battery_frame(records)
    if frame.empty:
        return frame
    frame["abs_bias_pct"] = frame["bias_pct"].abs()
    g = frame.groupby(["task", "estimator"], sort=False)
    out = g.agg(
        truth=("truth", "mean"),
        value=("value", "mean"),
        bias_pct=("bias_pct", "mean"),
        bias_sd=("bias_pct", "std"),
        abs_bias_pct=("abs_bias_pct", "mean"),
        seconds=("wall_time", "mean"),
        cpu_seconds=("cpu_time", "mean"),
        stop_step=("stop_step", "mean"),
        seeds=("seed", "count"),
    )
    return out


def estimator_summary(records: Iterable[dict]):
    """Per estimator over all its tasks: mean |bias| %, median bias %, worst task, seconds."""
    frame = battery_frame(records)
    if frame.empty:
        return frame
    per_task = frame.groupby(["estimator", "task"]).agg(bias=("bias_pct", "mean"), t=("wall_time", "mean"))
    rows = []
    for est, sub in per_task.groupby(level=0):
        worst = sub["bias"].abs().idxmax()[1]
        rows.append(
            {
                "estimator": est,
                "tasks": len(sub),
                "mean_abs_bias_pct": sub["bias"].abs().mean(),
                "median_bias_pct": sub["bias"].median(),
                "worst_task": worst,
                "worst_bias_pct": float(sub.loc[(est, worst), "bias"]),
                "seconds": sub["t"].mean(),
            }
        )
    import pandas as pd

    return pd.DataFrame(rows).set_index("estimator")


def load_battery(results_dir: str | os.PathLike, params: dict[str, Any] | None = None) -> list[dict]:
    """Stored truth records (only those of ``params``' configs when given)."""
    records = load_records(results_dir, KIND)
    if params is None:
        return records
    from ibcore.core.results import config_id

    wanted = {config_id(c) for c in battery_configs(params)}
    return [r for r in records if r["run_id"] in wanted]
