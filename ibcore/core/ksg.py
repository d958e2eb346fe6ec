"""The Kraskov-Stoegbauer-Grassberger k-nearest-neighbour MI estimator (KSG 1), method "ksg" of
:func:`ibcore.core.mi.estimate_mi`."""

from __future__ import annotations

import numpy as np


def ksg_mi(
    x: np.ndarray, y: np.ndarray, k: int = 3, seed: int = 0, n_boot: int = 200
) -> tuple[float, float, float]:
    """KSG estimator 1 (Kraskov et al. 2004, Eq. 8) for vector x [n, dx] and y [n, dy], in nats.

    I = psi(k) + psi(n) - < psi(n_x + 1) + psi(n_y + 1) >, with eps_i the max-norm distance of
    sample i to its k-th neighbour in the joint space and n_x (n_y) the samples strictly closer
    than eps_i in x (y). Inputs are standardised and jittered by 1e-10 (as scikit-learn does).
    Returns (value, ci_low, ci_high); the interval bootstraps the per-sample terms.
    """
    try:
        from scipy.special import digamma
        from sklearn.neighbors import KDTree, NearestNeighbors
    except ImportError as err:
        raise ImportError("method='ksg' needs scikit-learn: pip install scikit-learn") from err
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, n); got k={k} for n={n}")
    parts = []
    for a in (x, y):
        a = np.asarray(a, dtype=np.float64).reshape(n, -1)
        a = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1.0)
        parts.append(a + 1e-10 * rng.standard_normal(a.shape))
    xs, ys = parts
    joint = np.hstack((xs, ys))
    radius = NearestNeighbors(metric="chebyshev", n_neighbors=k).fit(joint).kneighbors()[0][:, -1]
    radius = np.nextafter(radius, 0)
    nx = KDTree(xs, metric="chebyshev").query_radius(xs, radius, count_only=True) - 1
    ny = KDTree(ys, metric="chebyshev").query_radius(ys, radius, count_only=True) - 1
    terms = digamma(nx + 1.0) + digamma(ny + 1.0)
    const = digamma(n) + digamma(k)
    value = float(const - terms.mean())
    boot = rng.integers(0, n, size=(n_boot, n))
    draws = const - terms[boot].mean(1)
    return value, float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))
