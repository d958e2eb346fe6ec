"""Small shared plotting helpers: one style for every figure, mean-and-spread bands, axes.

matplotlib and seaborn are imported inside the functions, so ``import ibcore`` never needs them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Colours and labels used for the estimators in every figure.
ESTIMATOR_STYLE = {
    "mine": {"label": "MINE", "color": "#0173b2", "marker": "o"},
    "aamine": {"label": "AA-MINE", "color": "#de8f05", "marker": "s"},
    "truth": {"label": "true MI (Eq. 5)", "color": "black", "marker": None},
    "bound": {"label": "Gaussian upper bound", "color": "0.45", "marker": None},
}


#: Width (inches) of a figure that spans the book's text column. Figures are drawn at this width
#: (or less), never wider, so that their fonts keep their size on the page: a 10 pt label in a
#: figure 7.5 in wide shows at about 14 px in the book's ~780 px column.
PAGE_WIDTH = 7.5
#: Resolution of the PNGs shown in the book (sharp on high-density screens, opened full size).
PAGE_DPI = 150


def set_style(context: str = "notebook", font_scale: float = 0.95) -> None:
    """The project's matplotlib/seaborn style: white grid, colour-blind palette, fonts that stay
    readable when a :data:`PAGE_WIDTH` figure fills the book's column."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale)
    mpl.rcParams.update(
        {
            "figure.dpi": PAGE_DPI,
            "savefig.dpi": PAGE_DPI,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "legend.frameon": False,
        }
    )


def page_figure(nrows: int = 1, ncols: int = 1, *, height: float = 3.0, width: float = PAGE_WIDTH, **kwargs):
    """``plt.subplots`` sized for the book's column: ``width`` inches wide (at most
    :data:`PAGE_WIDTH`), ``height`` inches a row; ``axes`` is always 2-D (``squeeze=False``).

    With more than three panels a row the panels get too narrow to read: use more rows instead.
    """
    import matplotlib.pyplot as plt

    width = min(width, PAGE_WIDTH)
    return plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False, **kwargs)


def mean_and_spread(
    ax,
    x: Sequence[float],
    mean: Sequence[float],
    spread: Sequence[float] | None = None,
    *,
    label: str | None = None,
    color: str | None = None,
    marker: str | None = "o",
    linestyle: str = "-",
    alpha: float = 0.2,
):
    """Plot ``mean`` against ``x`` with a band mean +- ``spread`` (skipped where NaN or None).

    Returns the line. Typical use: mean and standard deviation over seeds.
    """
    x = np.asarray(x, dtype=float)
    mean = np.asarray(mean, dtype=float)
    (line,) = ax.plot(x, mean, marker=marker, linestyle=linestyle, color=color, label=label)
    if spread is not None:
        spread = np.nan_to_num(np.asarray(spread, dtype=float), nan=0.0)
        if np.any(spread > 0):
            ax.fill_between(x, mean - spread, mean + spread, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def mean_and_spread_frame(ax, frame, x: str, y: str, *, spread: str = "std", **kwargs):
    """:func:`mean_and_spread` from columns of a data frame (sorted by ``x``)."""
    frame = frame.sort_values(x)
    return mean_and_spread(ax, frame[x], frame[y], frame[spread] if spread else None, **kwargs)


def symlog_zero_axis(ax, values: Sequence[float], axis: str = "x") -> None:
    """A symmetric-log axis that shows 0 together with positive values spanning decades.

    The linear region reaches the smallest positive value, so 0 gets its own tick.
    """
    values = np.asarray(values, dtype=float)
    positive = values[values > 0]
    linthresh = float(positive.min()) if positive.size else 1.0
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    setter("symlog", linthresh=linthresh, linscale=0.5)
    if axis == "x":
        ticks = sorted(set(values.tolist()))
        ax.set_xticks(ticks)
        ax.set_xticklabels([format_tick(v) for v in ticks], rotation=0)
        ax.set_xlim(-0.1 * linthresh, max(ticks) * 1.3 if ticks[-1] > 0 else 1.0)


def format_tick(v: float) -> str:
    """0, 1e-03, 0.1, 1, 10 style labels."""
    if v == 0:
        return "0"
    exp = np.log10(abs(v))
    if float(exp).is_integer() and not 0 <= exp <= 1:
        return f"1e{int(exp)}"
    return f"{v:g}"


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save ``fig`` to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
