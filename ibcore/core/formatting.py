"""Number formatting shared by the experiments and the report pages (pure functions, no I/O).

Significant figures (:func:`sig`), mean ± std, β in scientific notation (:func:`beta_tex`, the
paper's Eq. 8 weight of the compression term), and the names and paper order of the Table 1
data-set cells. They live in the core layer so that experiment modules (verdict texts) and the
report pages format numbers the same way without importing the report layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Paper order of the data-set cells (Table 1): MNIST 1 %, MNIST 100 %, CIFAR-10.
CELL_ORDER: tuple[tuple[str, float], ...] = (("mnist", 0.01), ("mnist", 1.0), ("cifar10", 1.0))
#: Text of a missing value when the caller gives no reason.
MISSING = "not measured"


# -- numbers -------------------------------------------------------------------------------


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def sig(x: Any, digits: int = 3, missing: str = MISSING) -> str:
    """``x`` to ``digits`` significant figures, without exponent between 1e-4 and 1e6:
    97.834 -> '97.8', 0.012345 -> '0.0123', 1234.5 -> '1230', 2.0 -> '2'; NaN/None -> ``missing``.
    Infinite values print as '∞'. Integers print in full; trailing zeros are kept (2.0 -> '2.00')."""
    if _is_missing(x):
        return missing
    if isinstance(x, int) or (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iu"):
        return str(int(x)).replace("-", "−")
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    x = float(f"{x:.{digits - 1}e}")  # rounded first, so 99.96 -> 100 has the exponent of 100
    exp = math.floor(math.log10(abs(x)))
    if exp < -4 or exp >= 6:
        return f"{x / 10**exp:.{digits - 1}f}×10^{exp}".replace("-", "−")
    decimals = digits - 1 - exp
    text = f"{x:.{decimals}f}" if decimals >= 0 else f"{round(x, decimals):.0f}"
    return text.replace("-", "−")


def mean_std(mean: Any, std: Any = None, n: int | None = None, missing: str = MISSING) -> str:
    """'97.8 ± 0.12' (mean to 3 significant figures, std to 2); one seed: '97.8 (1 seed)';
    a missing mean gives ``missing``."""
    if _is_missing(mean):
        return missing
    if _is_missing(std) or (n is not None and n < 2):
        return sig(mean) + (" (1 seed)" if n == 1 else "")
    return f"{sig(mean)} ± {sig(std, 2)}"


def beta_tex(b: Any) -> str:
    """β in scientific notation as TeX (without delimiters): 0 -> '0', 1e-3 -> '10^{-3}',
    2e-3 -> '2 \\times 10^{-3}', 1 -> '1', 100 -> '10^{2}'."""
    if _is_missing(b):
        return MISSING
    b = float(b)
    if b == 0:
        return "0"
    exp = math.floor(math.log10(abs(b)) + 1e-12)
    mantissa = b / 10**exp
    if exp in (0, 1):
        return f"{b:g}"
    if abs(mantissa - 1) < 1e-9:
        return f"10^{{{exp}}}"
    return f"{mantissa:.3g} \\times 10^{{{exp}}}"


def beta_html(b: Any) -> str:
    """β for an HTML table cell: inline math ``\\(10^{-3}\\)`` (typeset by the book)."""
    tex = beta_tex(b)
    return tex if tex in ("0", MISSING) else f"\\({tex}\\)"


def beta_md(b: Any) -> str:
    """β for MyST Markdown: ``$10^{-3}$``."""
    tex = beta_tex(b)
    return tex if tex in ("0", MISSING) else f"${tex}$"


def cell_name(dataset: str, fraction: float = 1.0) -> str:
    """'MNIST 1 %', 'MNIST 100 %', 'CIFAR-10' (a full data set other than MNIST has no %)."""
    name = {"mnist": "MNIST", "cifar10": "CIFAR-10", "synthetic": "synthetic"}.get(dataset, dataset)
    if dataset == "mnist" or float(fraction) != 1.0:
        return f"{name} {100 * float(fraction):g} %"
    return name


def cell_rank(dataset: str, fraction: float = 1.0) -> int:
    """Position of a cell in the paper's order (:data:`CELL_ORDER`); unknown cells go last."""
    for k, (d, f) in enumerate(CELL_ORDER):
        if d == dataset and math.isclose(float(fraction), f):
            return k
    return len(CELL_ORDER)


def paper_order(frame, dataset: str = "dataset", fraction: str = "fraction", then: Sequence[str] = ()):
    """``frame`` sorted in the paper's cell order (stable within a cell, or by ``then``)."""
    keys = frame.apply(lambda r: cell_rank(r[dataset], r[fraction] if fraction in r else 1.0), axis=1)
    out = frame.assign(_rank=keys).sort_values(["_rank", *then], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)
