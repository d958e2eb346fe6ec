"""Figure 3: how much the first layer's representation is "discretised" by the IB penalty.

The paper (Sec. 4, Fig. 3) shows t-SNE embeddings of the first layer of the MNIST net trained
with a large (1e2) and a small (1e-3) beta and reads the large-beta one as quantised: fewer,
tighter clusters, hence a smaller effective support and a lower I(X; L_1 + eps). Besides the
picture we measure two numbers on the representation of ``n`` test images:

- the AA-MINE estimate of I(X; L_1 + eps) recorded at the end of IB training (the value the
  penalty acted on, record metric ``I_x``);
- the **effective number of points** at a resolution h,
  ``N_eff(h) = exp(-1/n sum_i log(1/n sum_j exp(-||l_i - l_j||^2 / (2 h^2))))``.
  With h = sigma (the training noise) log N_eff is the pairwise-distance (KL) upper bound of
  Kolchinsky & Tracey on I(X; L + eps) for X drawn uniformly from the n images; N_eff runs
  from 1 (all points equal) to n (all points farther apart than ~h) and counts k equal, tight
  clusters as k. It falls both when points merge into clusters and when the whole
  representation shrinks relative to the noise. With h = ``rel`` times the representation's
  RMS radius (``sqrt(mean ||l_i - mean l||^2)``) it is scale-free: it only falls when points
  gather into clusters that are tight relative to the representation's own spread, which is
  what "discretisation" means.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ibcore.core import formatting as report
from ibcore.core.config import TrainConfig, check_seeds
from ibcore.core.results import StoredStateError, atomic_write_bytes

#: Records of the first-layer runs are stored under this kind (not "table1", so the Table 1
#: page never mixes them with its full-depth runs).
KIND = "fig3"
#: Default relative resolution of the scale-free N_eff.
RELATIVE_RESOLUTION = 0.25
SUMMARY_NAME = "fig3_tsne.json"


def fig3_configs(
    betas: Sequence[float],
    dataset: str = "mnist",
    fraction: float = 0.01,
    steps: int = 300,
    seeds: Sequence[int] = (0,),
    **train_params: Any,
) -> list[TrainConfig]:
    """One IB run per (beta, seed) that trains only the first layer (``max_layers=1``)."""
    if not betas:
        raise ValueError("fig3 needs at least one beta")
    check_seeds(seeds)
    out = []
    for beta in betas:
        beta = float(beta)
        if beta < 0 or not math.isfinite(beta):
            raise ValueError(f"betas must be finite and >= 0, got {beta}")
        for seed in seeds:
            out.append(
                TrainConfig(
                    dataset=dataset,
                    fraction=float(fraction),
                    method="ib",
                    beta=beta,
                    steps=int(steps),
                    max_layers=1,
                    seed=int(seed),
                    **{k: v for k, v in train_params.items() if v is not None},
                )
            )
    return out


@torch.no_grad()
def layer_representation(model, x: torch.Tensor, layer: int = 1) -> np.ndarray:
    """L_layer(x) of a trained :class:`~ibcore.core.models.LayerStack` as a float64 array (n, d)."""
    model.eval()
    rep = model.prefix(layer)(x)
    return rep.flatten(1).double().cpu().numpy()


def _as_array(rep) -> np.ndarray:
    rep = np.asarray(rep, dtype=np.float64)
    if rep.ndim != 2 or rep.shape[0] < 2:
        raise ValueError(f"a representation must be an (n >= 2, d) array, got shape {rep.shape}")
    if not np.all(np.isfinite(rep)):
        raise ValueError("the representation holds NaN or inf")
    return rep


def rms_radius(rep) -> float:
    """sqrt(mean_i ||l_i - mean l||^2): the representation's overall scale."""
    rep = _as_array(rep)
    return float(np.sqrt(((rep - rep.mean(0)) ** 2).sum(1).mean()))


def squared_distances(rep) -> np.ndarray:
    """(n, n) matrix of squared Euclidean distances (float64, clipped at 0)."""
    rep = _as_array(rep)
    sq = (rep**2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * rep @ rep.T
    np.fill_diagonal(d2, 0.0)
    return np.maximum(d2, 0.0)


def pairwise_information(rep, bandwidth: float, d2: np.ndarray | None = None) -> float:
    """-1/n sum_i log(1/n sum_j exp(-||l_i - l_j||^2 / (2 h^2))) in nats, in [0, log n].

    With h = sigma it is the Kolchinsky-Tracey (KL) upper bound on I(X; L + eps), X uniform on
    the n rows, eps ~ N(0, sigma^2 I)."""
    if not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth}")
    d2 = squared_distances(rep) if d2 is None else d2
    n = d2.shape[0]
    log_k = -d2 / (2.0 * bandwidth**2)
    m = log_k.max(1, keepdims=True)
    lme = m[:, 0] + np.log(np.exp(log_k - m).sum(1)) - math.log(n)
    return float(min(max(-lme.mean(), 0.0), math.log(n)))


def effective_points(rep, bandwidth: float, d2: np.ndarray | None = None) -> float:
    """N_eff(h) = exp(:func:`pairwise_information`): between 1 and n."""
    return math.exp(pairwise_information(rep, bandwidth, d2))


def discretisation_measures(rep, sigma: float, rel: float = RELATIVE_RESOLUTION) -> dict[str, float]:
    """The numbers of Figure 3 for one representation (rows = test images).

    ``n``; ``radius`` (RMS radius); ``n_eff_noise`` = N_eff(sigma) and ``i_noise`` its log (the
    KL upper bound on I(X; L + eps) over the sample); ``n_eff_relative`` = N_eff(rel * radius),
    scale-free; ``active_fraction``: fraction of positive entries (ReLU units on)."""
    rep = _as_array(rep)
    d2 = squared_distances(rep)
    radius = rms_radius(rep)
    out = {"n": int(rep.shape[0]), "radius": radius, "active_fraction": float((rep > 0).mean())}
    if sigma > 0:
        out["i_noise"] = pairwise_information(rep, sigma, d2)
        out["n_eff_noise"] = math.exp(out["i_noise"])
    else:
        out["i_noise"], out["n_eff_noise"] = math.log(rep.shape[0]), float(rep.shape[0])
    out["n_eff_relative"] = effective_points(rep, rel * radius, d2) if radius > 0 else 1.0
    return out


def tsne_embedding(rep, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-d t-SNE embedding (scikit-learn, PCA initialisation, seeded, one thread)."""
    from sklearn.manifold import TSNE

    rep = _as_array(rep)
    perplexity = min(perplexity, max(1.0, (rep.shape[0] - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
    return tsne.fit_transform(rep.astype(np.float32))


def measures_table(rows: Iterable[dict[str, Any]]):
    """pandas DataFrame sorted by beta (descending) from per-run dicts holding ``beta``,
    ``seed`` and measure columns; mean over seeds when several runs share a beta."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    numeric = [
        c for c in frame.columns if c not in ("beta", "seed") and pd.api.types.is_numeric_dtype(frame[c])
    ]
    table = frame.groupby("beta", sort=False)[numeric].mean()
    table["seeds"] = frame.groupby("beta", sort=False)["seed"].size()
    return table.sort_index(ascending=False).reset_index()


#: Measures where "more compressed" means smaller, with their labels.
MEASURES = {
    "I_x": "AA-MINE I(X;L₁+ε) at the end of training [nats]",
    "n_eff_noise": "N_eff at h = σ (points distinguishable under the noise)",
    "n_eff_relative": "N_eff at h = rel × radius (scale-free cluster count)",
}
#: Short labels of :data:`MEASURES`.
SHORT = {"I_x": "I(X;L₁+ε)", "n_eff_noise": "N_eff(h=σ)", "n_eff_relative": "N_eff(h=rel·radius)"}


def discretisation_verdict(table) -> dict[str, Any]:
    """Compare the largest and the smallest beta of :func:`measures_table` on each measure.

    Returns ``{"beta_large", "beta_small", "measures": {name: {"large", "small", "lower"}},
    "all_lower"}``; ``lower`` is True when the large beta gives the smaller value (the
    paper's claim: fewer effective points, lower I(X; L + eps)). Empty table -> ``{}``.
    """
    if table is None or len(table) < 2:
        return {}
    large, small = table.iloc[0], table.iloc[-1]
    out: dict[str, Any] = {
        "beta_large": float(large["beta"]),
        "beta_small": float(small["beta"]),
        "measures": {},
    }
    for name in MEASURES:
        if name in table.columns and np.isfinite(large[name]) and np.isfinite(small[name]):
            out["measures"][name] = {
                "large": float(large[name]),
                "small": float(small[name]),
                "lower": bool(large[name] < small[name]),
            }
    out["all_lower"] = bool(out["measures"]) and all(m["lower"] for m in out["measures"].values())
    return out


def verdict_markdown(verdict: dict[str, Any]) -> str:
    """One line per measure (large against small beta) and the conclusion they support."""
    if not verdict:
        return "Fewer than two values of $\\beta$ were run: nothing to compare."
    large, small = report.beta_tex(verdict["beta_large"]), report.beta_tex(verdict["beta_small"])
    names = {
        "I_x": "AA-MINE's $I(X;L_1+\\varepsilon)$ at the end of training (nats)",
        "n_eff_noise": "$N_{\\mathrm{eff}}$ at $h = \\sigma$ (points distinguishable under the noise)",
        "n_eff_relative": "$N_{\\mathrm{eff}}$ at the relative resolution (scale-free cluster count)",
    }
    lines = [
        f"- {names.get(name, name)}: {report.sig(m['large'])} at $\\beta = {large}$, "
        f"{report.sig(m['small'])} at $\\beta = {small}$: **{'lower' if m['lower'] else 'not lower'}**."
        for name, m in verdict["measures"].items()
    ]
    noise = verdict["measures"].get("n_eff_noise", {}).get("lower")
    rel = verdict["measures"].get("n_eff_relative", {}).get("lower")
    if verdict["all_lower"]:
        lines.append(
            "\nThe larger $\\beta$ gives fewer effective points and a lower $I(X;L_1+\\varepsilon)$ on "
            "every measure, as the paper claims."
        )
    elif noise and rel is False:
        lines.append(
            "\nThe larger $\\beta$ compresses the layer relative to the noise (fewer points distinguishable "
            "at $h = \\sigma$), but not by clustering: relative to its own scale the large-$\\beta$ "
            "representation is *not* more discrete. The paper's reading of its Figure 3 as a quantisation "
            "is not supported by this run."
        )
    else:
        lines.append(
            "\nThe measures do not all agree with the paper's claim that a larger $\\beta$ discretises "
            "the layer."
        )
    return "\n".join(lines)


def write_summary(path: str | os.PathLike, summary: dict[str, Any]) -> Path:
    """Store the page's numbers as JSON (read by the claims page)."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(summary, indent=1, sort_keys=True, default=float).encode())
    return path


def read_summary(results_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The summary the Figure 3 page wrote under ``results_dir``, or None."""
    path = Path(results_dir) / SUMMARY_NAME
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StoredStateError(
            f"{path} cannot be read ({err}); delete it and rerun the Figure 3 notebook (nbs/fig3_tsne)"
        ) from None
    if not isinstance(summary, dict):
        raise StoredStateError(f"{path} holds no summary; delete it and rerun the Figure 3 notebook")
    return summary


def effective_points_curve(rep, rels: Sequence[float]) -> list[float]:
    """N_eff(rel * radius) for each relative resolution in ``rels`` (one distance matrix)."""
    rep = _as_array(rep)
    d2 = squared_distances(rep)
    radius = rms_radius(rep)
    if radius == 0:
        return [1.0 for _ in rels]
    return [effective_points(rep, r * radius, d2) for r in rels]


def configs_from_params(params: dict[str, Any]) -> list[TrainConfig]:
    """The first-layer runs of the Figure 3 notebook, from its papermill parameters."""
    train = ("sigma", "batch_size", "probe_steps", "checkpoints", "checkpoint_probe_steps")
    return fig3_configs(
        params.get("betas", [100.0, 0.001]),
        params.get("dataset", "mnist"),
        params.get("fraction", 0.01),
        params.get("steps", 300),
        params.get("seeds", [0]),
        **{k: params[k] for k in train if params.get(k) is not None},
    )


def cached_tsne_embedding(
    rep, path: str | os.PathLike, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """:func:`tsne_embedding`, stored as JSON at ``path`` the first time and read back after that
    (compute once, render many times); a stored embedding of other settings is recomputed."""
    path = Path(path)
    rep = _as_array(rep)
    key = {"seed": seed, "perplexity": perplexity, "n": int(rep.shape[0])}
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if {k: stored.get(k) for k in key} == key:
                return np.asarray(stored["embedding"], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: recompute and overwrite below
    emb = np.round(tsne_embedding(rep, seed=seed, perplexity=perplexity), 4)  # as stored
    atomic_write_bytes(path, json.dumps({**key, "embedding": emb.tolist()}).encode())
    return emb
