"""Exact references of Figure 1's panel a (issue 10): I(X; L + eps) with X uniform over the
held-out rows of each estimate, computed once and stored in ``figure1_reference.json``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

import torch

from ibcore.core.bounds import mixture_mi_bounds, monte_carlo_mixture_mi
from ibcore.core.data import load_dataset
from ibcore.experiments.figure1_run import gaussian_upper_bound, panel_a_net, resolve_results_dir

#: Stored beside the records: the exact references of panel a, computed once (compute-then-render).
REFERENCE_FILE = "figure1_reference.json"
#: Bumped whenever a code change alters the reference values.
REFERENCE_VERSION = 1
#: Monte Carlo draws of :func:`ibcore.core.bounds.monte_carlo_mixture_mi` per reference.
REFERENCE_MC_DRAWS = 20000
#: Config fields that fix panel a's clean features and held-out split (not sigma^2).
REFERENCE_FIELDS = ("dataset", "widths", "n_samples", "seed", "holdout_fraction")


def heldout_indices(n: int, holdout_fraction: float, seed: int, early_stopping: bool = False) -> torch.Tensor:
    """The held-out rows of :meth:`NeuralEstimator.estimate` on ``n`` samples run on the CPU
    (its generator's first draw is this permutation; the held-out part comes first). With early
    stopping the first half of them validates and the estimate is on the second half."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_hold = max(2, int(round(n * holdout_fraction)))
    return order[n_hold // 2 : n_hold] if early_stopping else order[:n_hold]


def reference_key(config: dict[str, Any]) -> str:
    """The key of a panel-a record's reference: its features, split and sigma^2 (the split of an
    early-stopped estimate is another one: its key says so)."""
    fields = {k: config[k] for k in REFERENCE_FIELDS}
    if "early_stopping" in config:
        fields["early_stopping"] = True
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
        held = feats[heldout_indices(c["n_samples"], c["holdout_fraction"], c["seed"], "early_stopping" in c)]
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
