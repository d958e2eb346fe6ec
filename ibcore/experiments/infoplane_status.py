"""The statuses of information-plane points (issue 10): N, the samples a record's DV values were
computed on (log N caps a certified I(X; L + eps)), H(Y) and the Fano lower bound on I(Y; L), and
the flags of both estimates (:mod:`ibcore.experiments.infoplane`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ibcore.core.bounds import CERTIFIED, mi_status
from ibcore.core.training import EVAL_SAMPLES

#: Statuses of an I(Y; L) estimate: inside [0, H(Y)] and not below the Fano bound, or flagged.
Y_OK = "in range"
Y_BELOW_ZERO = "below 0"
Y_ABOVE_HY = "above H(Y)"
Y_BELOW_FANO = "below Fano bound"
#: Number of classes of every data set used (MNIST, CIFAR-10).
NUM_CLASSES = 10


def label_entropy(dataset: str, data_dir: str | None = None, split: str = "test") -> float:
    """H(Y) in nats of the labels of ``dataset``'s ``split`` (empirical frequencies)."""
    import numpy as np

    from ibcore.core.data import find_file

    with np.load(find_file(dataset, data_dir)) as arrays:
        y = arrays[f"y_{split}"]
    p = np.bincount(y.astype(int).ravel()) / y.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def binary_entropy(p: float) -> float:
    """h_b(p) in nats (0 at p = 0 or 1)."""
    if p <= 0 or p >= 1:
        return 0.0
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def fano_lower_bound(accuracy: float, num_classes: int, h_y: float) -> float:
    """Fano's lower bound on I(Y; L) from the accuracy of any classifier of Y from L (nats):

    H(Y | L) <= h_b(Pe) + Pe log(K - 1) with Pe = 1 - accuracy, so
    I(Y; L) >= H(Y) - h_b(Pe) - Pe log(K - 1), floored at 0 (I >= 0). NaN accuracy gives NaN.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if accuracy != accuracy:
        return math.nan
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    pe = 1.0 - float(accuracy)
    return max(0.0, h_y - binary_entropy(pe) - pe * math.log(num_classes - 1))


def label_status(value: float, h_y: float, fano: float = math.nan) -> str:
    """Flag of an I(Y; L) estimate: below 0, above H(Y) (no MI can be), below the Fano lower
    bound (the estimator lost track of the label information), or "in range"."""
    if value < 0:
        return Y_BELOW_ZERO
    if value > h_y:
        return Y_ABOVE_HY
    if fano == fano and value < fano:
        return Y_BELOW_FANO
    return Y_OK


def x_status(value: float, n: int, upper: float = math.nan) -> str:
    """:func:`ibcore.core.bounds.mi_status` of I(X; L + eps) with the layer's pairwise-KL upper bound
    when known (NaN: log N only)."""
    return mi_status(value, int(n), upper if upper == upper else None)


def eval_n(record: dict[str, Any]) -> int:
    """N of a record: the samples its DV values were computed on, min(n_train, 2048)."""
    return min(int(record["data_source"]["n_train"]), EVAL_SAMPLES)


def eval_sizes(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], int]:
    """Per (dataset, fraction): N, the number of samples its recorded DV values were computed
    on (min(n_train, 2048))."""
    return {
        (r["config"]["dataset"], r["config"]["fraction"]): eval_n(r)
        for r in records
        if (r.get("data_source") or {}).get("n_train")
    }


def eval_size(records: Iterable[dict[str, Any]]) -> int | None:
    """The smallest N of :func:`eval_sizes` over the records (None without records)."""
    sizes = eval_sizes(records)
    return min(sizes.values()) if sizes else None


def mi_flag(name: str, value: float, n: int | None) -> str:
    """The status of a mean MI estimate, for its table cell: empty when certified (I(X;L+eps)
    below log N) or in range (I(Y;L) in [0, log 10]), else a short flag."""
    if value != value or n is None:
        return ""
    if name == "I_x":
        status = x_status(value, n)
        return "" if status == CERTIFIED else f" ({status})"
    status = label_status(value, math.log(10))
    return "" if status == Y_OK else f" ({status})"
