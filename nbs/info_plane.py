# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The information plane
#
# The paper defers "an analysis of the information plane dynamics during training" to its
# supplementary material, which is not available. This page draws it from our records: for every
# layer $L_i$, the trajectory of $(I(X;L_i+\varepsilon), I(Y;L_i))$ while the layer is trained
#
# - **layer by layer on the IB functional**, one curve per $\beta$ of the
#   [β sweep](beta_sweep.ipynb) (same profile, same records): the checkpoints of layer $i$'s own
#   training, while layers $1..i-1$ are frozen;
# - **end to end with cross-entropy**, measured at the checkpoints of the whole net's training with
#   the same estimators, trained for `measure_steps` steps on the frozen net at each checkpoint.
#
# The information-plane picture of {cite:t}`shwartzziv2017opening` predicts a fitting phase followed by
# compression (falling $I(X;L_i)$) under cross-entropy training; the IB objective compresses
# explicitly, the more so the larger $\beta$.

# %% tags=["parameters"]
# Parameters (papermill overrides them; the defaults are the "tiny" smoke size).
profile = "tiny"
results_dir = "results/tiny"
device = "auto"
data_dir = None
sweep_params = None  # None: the beta_sweep entry of profiles/<profile>.yml
cells = [{"dataset": "mnist", "fraction": 0.01, "steps": 20, "ce_steps": 60}]
rows = ["ce"]
seeds = [0]
sigma = 1.0
batch_size = 128
probe_steps = 50
checkpoints = 2
checkpoint_probe_steps = 20
measure_steps = 20
run_missing = False  # True: compute the runs not stored yet here (else an error names the command)
heldout = None  # held-out I(Y;L) runs (ibcore.experiments.heldout_plane.heldout_configs); None: none

# %% tags=["hide-input"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "info_plane")

import math

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from matplotlib.colors import LogNorm
from myst_nb import glue

from ibcore.core.bounds import ABOVE_LOG_N, ABOVE_UPPER, BELOW_LOWER, CERTIFIED
from ibcore.core.data import DataError
from ibcore.core.results import load_records, project_path
from ibcore.experiments import infoplane, sweep, table1
from ibcore.orchestration.compute import ensure_records, notebook_params
from ibcore.report.claims import profile_params
from ibcore.report.plotting import save_figure, set_style

set_style()
out_dir = project_path(results_dir)
stored = load_records(out_dir, table1.KIND)
if sweep_params is None:
    sweep_params = profile_params(profile, "beta_sweep")
sweep_configs = table1.configs_from_params(sweep_params) if sweep_params.get("cells") else []
ib_records = sweep.select_records(stored, sweep_configs)
ce_configs, ce_records = [], []
if measure_steps and cells:
    ce_params = notebook_params("info_plane", globals())  # the parameters cell, as papermill set it
    ce_configs = table1.configs_from_params(ce_params)
    # stored by the pipeline (or here: run_missing); the held-out runs are read in their own section
    ce_records = ensure_records("info_plane", globals(), kind=table1.KIND)
missing = sweep.missing_configs(ib_records, sweep_configs) + sweep.missing_configs(ce_records, ce_configs)
records = ib_records + ce_records
h_y = {}
for dataset in sorted({r["config"]["dataset"] for r in records}):
    try:
        h_y[dataset] = infoplane.label_entropy(dataset, data_dir)
    except DataError:  # no labels at hand: I(Y;L) is checked against [0, log 10] only, no Fano bound
        pass
frame = infoplane.trajectories(records, h_y)
mean = infoplane.mean_trajectories(frame)
compression = infoplane.compression_table(mean)
sizes = infoplane.eval_sizes(records)  # N per (dataset, fraction)

# %% [markdown]
# ## Run

# %% tags=["hide-input"]
betas = sorted(frame.loc[frame.method == "ib", "beta"].unique())
display(
    Markdown(
        f"Profile **`{profile}`**: {len(ib_records)} layer-by-layer IB records of the β sweep "
        f"(β ∈ {{{', '.join(f'{b:g}' for b in betas)}}}) and {len(ce_records)} cross-entropy "
        f"record(s) measured at {checkpoints} checkpoints with estimators trained {measure_steps} "
        "steps each; "
        + "; ".join(
            sweep.cell_name(d, f)
            for d, f in sorted({(r["config"]["dataset"], r["config"]["fraction"]) for r in records})
        )
        + "."
        + (
            f" **Missing** ({len(missing)} runs): "
            + ", ".join(
                f"{c.method} {sweep.cell_name(c.dataset, c.fraction)} β = {c.beta:g} seed {c.seed}"
                for c in missing
            )
            + "."
            if missing
            else ""
        )
    )
)

# %% [markdown]
# ## Which estimator produced these numbers
#
# Both coordinates are Donsker-Varadhan (DV) values, in nats, of statistics networks evaluated on
# the first $N = \min(n_{\mathrm{train}}, 2048)$ training images:
#
# - $I(Y;L_i)$: MINE with $T(l, y) = f(l)_y$, $f$ an MLP;
# - $I(X;L_i+\varepsilon)$: AA-MINE with the **tied mixture critic** used during IB training,
#   $T(x_k, z) = -a\lVert h_k - z\rVert^2 - \log \tfrac1N \sum_j e^{-a\lVert h_j - z\rVert^2}$ with
#   $h = L_i(x)$ (the copy of layers $1..i$ tied to the layers) and one learnt scale $a$.
#
# With this critic the joint term $\mathbb{E}_P[T]$ of the DV bound is at most $\log N$ (the
# mixture contains the joint pair itself), but the DV value subtracts $\log$ of the mean of
# $e^{T}$ over *shuffled* pairs, which is not bounded below: when the noisy points $z$ are far
# from every other sample's $h$, that mean is tiny and the DV value exceeds $\log N$. Such values
# say that the $N$ samples are resolved from each other under the noise, not how large the
# mutual information is.
#
# **Status of every point.** Over the $N$ samples the input distribution is the empirical one,
# so $I(X;L_i+\varepsilon) \le \log N$ and, given the layer output on those samples, it is
# pinned between the Bhattacharyya lower and the pairwise-KL upper bound (see
# [Figure 1](fig1_estimators.ipynb)). Each value of $I(X;L_i+\varepsilon)$ is *certified* (below
# $\log N$ and below the pairwise-KL bound where known), *above log N* (not certifiable from $N$
# samples) or *above upper bound* (not an MI value). Each value of $I(Y;L_i)$ is checked against
# $[0, H(Y)]$ and against Fano's lower bound
# $I(Y;L_i) \ge H(Y) - h_b(P_e) - P_e \log(K-1)$, with $P_e$ the test error of the checkpoint's
# linear probe on $L_i$ (IB) or of the whole net (cross-entropy: its prediction is a function of
# every $L_i$, so its error bounds every layer), $K = 10$ and $H(Y)$ of the test labels. The
# probe's error is measured on the 10 000 held-out test images; the DV values of $I(Y;L_i)$ are
# on the $N$ training samples above; the section "I(Y; L_i) on held-out samples" below adds
# held-out values for a smaller set of runs with a validation split.

# %% tags=["hide-input"]
if len(frame):
    counts = infoplane.status_counts(frame)
    have_bounds = int(frame["I_x_upper"].notna().sum())
    per_cell = "; ".join(
        f"{sweep.cell_name(d, f)}: $N$ = {n}, $\\log N$ = {math.log(n):.2f} nats"
        for (d, f), n in sorted(sizes.items())
    )
    total = len(frame)
    bounds_text = (
        f"{have_bounds} of the {total} points carry the exact bounds of their layer output."
        if have_bounds
        else "The stored records hold the estimates only, not the layer outputs or the weights, so the "
        "exact bounds cannot be recomputed for them: these points carry their status against "
        "$\\log N$ only (records written from now on store the bounds at each checkpoint)."
    )
    y_lo, y_hi = frame["I_y"].min(), frame["I_y"].max()
    fano_known = frame["fano"].notna()
    display(
        Markdown(
            f"Here $N$, the number of samples each value was computed on, is: {per_cell}. Of the {total} "
            f"values of $I(X;L_i+\\varepsilon)$, **{counts[CERTIFIED]} are certified**, "
            f"{counts[ABOVE_LOG_N]} ({100 * counts[ABOVE_LOG_N] / total:.0f} %) lie above $\\log N$ "
            f"(largest {frame['I_x'].max():.1f} nats), {counts[ABOVE_UPPER]} above an exact upper "
            f"bound and {counts[BELOW_LOWER]} below 0 (lowest {frame['I_x'].min():.2g}). {bounds_text}\n\n"
            f"$I(Y;L_i)$ (H(Y) = "
            + ", ".join(f"{d}: {v:.3f}" for d, v in h_y.items())
            + f" nats): {counts['I_y in range']} values in range, {counts['I_y below 0']} below 0 "
            f"(lowest {y_lo:.3g}), {counts['I_y above H(Y)']} above $H(Y)$ (highest {y_hi:.3g}) and "
            f"{counts['I_y below Fano bound']} below the Fano bound of their accuracy; "
            f"{int(fano_known.sum())} of the {total} points have an accuracy to bound them."
        )
    )
    glue("plane_frac_above", f"{100 * counts[ABOVE_LOG_N] / total:.0f} %", display=False)
else:
    display(Markdown("No records: nothing to measure."))


# %% [markdown]
# ## Trajectories
#
# One panel per layer and data set. Colour: $\beta$ (grey: $\beta = 0$); black: cross-entropy.
# Each curve runs through the checkpoints in training order, from a small marker to the arrow head
# at the last checkpoint. The mean over seeds is drawn where there are several. Filled markers:
# $I(X;L_i+\varepsilon)$ certified; hollow: above $\log N$ (dotted vertical line) or above an
# upper bound. Values of $I(Y;L_i)$ outside $[0, H(Y)]$ are drawn at the edge of the panel as red
# triangles pointing the way they left it. The thin dashed curve of the same colour is Fano's lower
# bound on $I(Y;L_i)$ from the checkpoint's accuracy; where the exact bounds of
# $I(X;L_i+\varepsilon)$ are stored they are drawn as horizontal bars.


# %% tags=["hide-input"]
def plane_figure(mean):
    groups = list(mean.groupby(["dataset", "fraction"], sort=False))
    n_layers = int(mean["layer"].max()) if len(mean) else 1
    fig, axes = plt.subplots(
        len(groups), n_layers, figsize=(4.4 * n_layers, 4.0 * len(groups)), squeeze=False
    )
    positive = sorted(b for b in mean.loc[mean.method == "ib", "beta"].unique() if b > 0)
    norm = LogNorm(min(positive), max(positive)) if len(positive) > 1 else None
    cmap = plt.get_cmap("viridis")
    for row, ((d, f), cell) in zip(axes, groups, strict=True):
        y_top = h_y.get(d, math.log(10))
        y_lim = (-0.08 * y_top, 1.12 * y_top)
        for layer, ax in enumerate(row, 1):
            part = cell[cell.layer == layer]
            for (method, beta), curve in part.groupby(["method", "beta"], sort=True):
                curve = curve.sort_values("k")
                if method == "ce":
                    color, label = "black", "cross-entropy"
                elif beta == 0:
                    color, label = "0.6", "β = 0"
                else:
                    color = cmap(norm(beta)) if norm else "C0"
                    label = f"β = {beta:g}"
                x = curve["I_x"].to_numpy()
                y = np.clip(curve["I_y"].to_numpy(), *y_lim)
                ok = curve["x_certified"].to_numpy()
                ax.plot(x, y, color=color, linewidth=1.3, label=label)
                sizes_k = np.linspace(8, 30, max(len(x) - 1, 1))[: len(x) - 1]
                for mask, face in ((ok[:-1], color), (~ok[:-1], "white")):
                    ax.scatter(
                        x[:-1][mask],
                        y[:-1][mask],
                        s=sizes_k[mask],
                        facecolors=face,
                        edgecolors=[color],
                        zorder=3,
                    )
                if len(x) > 1:
                    ax.annotate(
                        "",
                        xy=(x[-1], y[-1]),
                        xytext=(x[-2], y[-2]),
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3),
                    )
                ax.scatter(
                    x[-1:],
                    y[-1:],
                    s=30,
                    marker=">",
                    facecolors=color if ok[-1] else "white",
                    edgecolors=[color],
                )
                fano = curve["fano"].to_numpy()
                if np.isfinite(fano).any():
                    ax.plot(x, fano, color=color, linewidth=0.8, linestyle="--", alpha=0.8)
                if curve["I_x_upper"].notna().any():
                    ax.hlines(y, curve["I_x_lower"], curve["I_x_upper"], color=color, linewidth=0.8)
                raw = curve["I_y"].to_numpy()
                for sel, mk in ((raw < 0, "v"), (raw > y_top, "^")):
                    if sel.any():
                        ax.scatter(
                            x[sel],
                            np.where(raw[sel] < 0, y_lim[0], y_lim[1]),
                            marker=mk,
                            color="red",
                            s=28,
                            zorder=5,
                        )
            if (d, f) in sizes:
                ax.axvline(math.log(sizes[(d, f)]), color="0.7", linestyle=":", linewidth=1)
            ax.axhline(y_top, color="0.85", linewidth=0.8)
            ax.set_xscale("symlog", linthresh=1.0)
            if len(part) and part["I_x"].min() >= 0:
                ax.set_xlim(left=0)
            ax.set_ylim(*y_lim)
            ax.set_title(f"{sweep.cell_name(d, f)}, layer {layer}")
            ax.set_xlabel("I(X; Lᵢ+ε) [nats]")
            ax.set_ylabel("I(Y; Lᵢ) [nats]")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    from matplotlib.lines import Line2D

    handles["filled: I(X;L+ε) certified"] = Line2D([], [], marker="o", color="0.3", linestyle="none")
    handles["hollow: above log N"] = Line2D([], [], marker="o", color="0.3", mfc="white", linestyle="none")
    handles["red ▲▼: I(Y;L) outside [0, H(Y)]"] = Line2D([], [], marker="^", color="red", linestyle="none")
    handles["dashed: Fano lower bound on I(Y;L)"] = Line2D([], [], color="0.3", linestyle="--", linewidth=0.8)
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="lower center",
        ncol=min(len(handles), 6),
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.tight_layout(rect=(0, 0.14 / len(groups), 1, 1))
    return fig


if len(mean):
    fig = plane_figure(mean)
    save_figure(fig, out_dir / "info_plane.png")
else:
    fig = plt.figure(figsize=(4, 1))
    fig.text(0.5, 0.5, "no trajectories in this profile", ha="center")
glue("plane_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} plane_fig
# :name: fig-info-plane
#
# Information-plane trajectories of each layer during layer-by-layer IB training (colour:
# $\beta$) and during cross-entropy training (black). The dotted vertical line marks $\log N$;
# hollow markers are values of $I(X;L_i+\varepsilon)$ that are not certified; red triangles mark
# values of $I(Y;L_i)$ outside $[0, H(Y)]$ (the thin grey line is $H(Y)$); dashed curves are the
# Fano lower bounds on $I(Y;L_i)$. The $x$-axis is logarithmic above 1 nat.
# ```

# %% [markdown]
# ## Compression
#
# Per curve: $I(X;L_i+\varepsilon)$ at the first checkpoint, at its peak and at the last one, and
# the relative fall from the peak to the end. Two readings are computed, from certified values
# only:
#
# - IB training: does the largest $\beta$ end with a lower $I(X;L_i+\varepsilon)$ than the smallest,
#   in each layer? Decided by the exact bounds where they are stored and do not overlap, else only
#   where both final estimates are certified.
# - cross-entropy: does $I(X;L_i+\varepsilon)$ fall by more than 10 % after its peak (a compression
#   phase)? Decided by the exact bounds where they settle it, else only where every checkpoint of
#   the layer is certified; with one seed and estimators retrained at each checkpoint the estimates
#   are sensitive to estimator noise.

# %% tags=["hide-input"]
lines = []
for c in infoplane.beta_compression(compression):
    verdict = ("lower" if c["lower"] else "not lower") if c["measurable"] else "not measurable"
    lines.append(
        f"- IB, {sweep.cell_name(c['dataset'], c['fraction'])}, layer {c['layer']}: "
        f"β = {c['beta_large']:g} ends at {c['I_x_large']:.3g} nats, "
        f"β = {c['beta_small']:g} at {c['I_x_small']:.3g}: **{verdict}**"
        + (f" ({c['by']})." if c["measurable"] else " (a final value is not certified).")
    )
for c in infoplane.ce_compression(compression):
    verdict = (
        ("compression phase" if c["compressed"] else "no compression phase")
        if c["measurable"]
        else "not measurable"
    )
    lines.append(
        f"- Cross-entropy, {sweep.cell_name(c['dataset'], c['fraction'])}, layer {c['layer']}: peak "
        f"{c['I_x_peak']:.3g}, last {c['I_x_last']:.3g} nats (fall {100 * c['drop']:.0f} %): **{verdict}**"
        + (f" ({c['by']})." if c["measurable"] else " (a checkpoint is not certified).")
    )
display(Markdown("\n".join(lines) if lines else "No trajectories to judge."))

# %% [markdown]
# ## Final points and their status
#
# The last checkpoint of every curve (mean over seeds): $I(X;L_i+\varepsilon)$ with its status
# (certified only when every seed's value is) and, where stored, its exact bounds; $I(Y;L_i)$ with
# its flag and Fano's lower bound from the checkpoint's accuracy.


# %% tags=["hide-input"]
def final_points(mean):
    import pandas as pd

    if mean.empty:
        return pd.DataFrame()
    last = (
        mean.sort_values("k").groupby(["method", "dataset", "fraction", "beta", "layer"], sort=True).tail(1)
    )
    last = last.sort_values(["dataset", "fraction", "method", "beta", "layer"])

    def x_status(r):
        if r["x_certified"]:
            return CERTIFIED
        if r["I_x"] < 0:
            return BELOW_LOWER
        return ABOVE_UPPER if r["I_x"] > r["I_x_upper"] else ABOVE_LOG_N

    def y_flag(r):
        top = h_y.get(r["dataset"], math.log(10))
        return infoplane.label_status(r["I_y"], top, r["fano"])

    def bounds(r):
        return "not stored" if math.isnan(r["I_x_upper"]) else f"[{r['I_x_lower']:.3g}, {r['I_x_upper']:.3g}]"

    return pd.DataFrame(
        {
            "cell": [sweep.cell_name(d, f) for d, f in zip(last["dataset"], last["fraction"], strict=True)],
            "training": [
                "cross-entropy" if m == "ce" else f"IB β = {b:g}"
                for m, b in zip(last["method"], last["beta"], strict=True)
            ],
            "layer": last["layer"].astype(int),
            "log N": [f"{math.log(n):.2f}" for n in last["n"]],
            "I(X;L+ε) [nats]": [f"{v:.3g}" for v in last["I_x"]],
            "status": last.apply(x_status, axis=1),
            "exact bounds": last.apply(bounds, axis=1),
            "I(Y;L) [nats]": [f"{v:.3g}" for v in last["I_y"]],
            "I(Y;L) flag": last.apply(y_flag, axis=1),
            "Fano bound": ["n/a" if math.isnan(v) else f"≥ {v:.3g}" for v in last["fano"]],
            "accuracy": ["n/a" if math.isnan(v) else f"{100 * v:.1f} %" for v in last["accuracy"]],
            "seeds": last["seeds"].astype(int),
        }
    )


final_points(mean).style.hide(axis="index")

# %% [markdown]
# ## I(Y; L_i) on held-out samples
#
# Every $I(Y;L_i)$ above is the label critic's DV value on the $N$ *training* samples the critic
# was trained on. The runs of this section hold out a validation split, so each checkpoint also
# records, drawn from generators beside the training stream (the trajectory is that of the run
# without them):
#
# - **held-out** $I(Y;L_i)$: the same label critic $T(l, y) = f(l)_y$ evaluated on the validation
#   images (its DV value, Eq. 6, with marginals from one shuffle);
# - **probe bound** $H(Y) - \mathrm{CE}_{\mathrm{val}}$: the cross-entropy of the checkpoint's
#   linear probe on $L_i$ on the validation images, subtracted from the entropy of their labels; for
#   any classifier $q$, $H(Y) - \mathbb{E}[-\log q(Y|L)] \le I(Y;L)$, so this estimates a lower bound.
#
# Nothing is clipped: values outside $[0, \log 10]$ are counted and drawn as red crosses at their
# value. Cross-entropy runs are measured at their checkpoints with freshly trained estimators and a
# probe per layer.

# %% tags=["hide-input"]
from ibcore.experiments import heldout_plane

heldout_cfgs = heldout_plane.heldout_configs(heldout)
heldout_records = sweep.select_records(load_records(out_dir, heldout_plane.KIND), heldout_cfgs)
heldout_missing = sweep.missing_configs(heldout_records, heldout_cfgs)
hframe = heldout_plane.heldout_trajectories(heldout_records)
hsummary = heldout_plane.heldout_summary(hframe)
display(Markdown(heldout_plane.runs_markdown(heldout_cfgs, heldout_records, heldout_missing)))


# %% tags=["hide-input"]
def heldout_figure(hframe):
    n_layers = int(hframe["layer"].max())
    fig, axes = plt.subplots(1, n_layers, figsize=(4.4 * n_layers, 3.8), squeeze=False, sharey=True)
    rows_ = list(dict.fromkeys(hsummary["row"]))
    styles = {
        "I_y": ("-", "training samples"),
        "I_y_val": ("--", "held-out"),
        "I_y_probe_lower": (":", "probe bound"),
    }
    for layer, ax in enumerate(axes[0], 1):
        part = hframe[hframe.layer == layer]
        for j, row in enumerate(rows_):
            curve = part[part.row == row]
            if curve.empty:
                continue
            g = curve.groupby("progress")
            for q, (ls, _) in styles.items():
                m = g[q].mean()
                ax.plot(m.index, m.to_numpy(), color=f"C{j}", linestyle=ls, linewidth=1.4)
                bad = curve[curve[f"flag_{q}"] != ""]
                if len(bad):
                    ax.scatter(bad["progress"], bad[q], marker="x", color="red", s=30, zorder=5)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.axhline(math.log(10), color="0.6", linewidth=0.8)
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("fraction of training (the layer's: IB; the net's: CE)")
        ax.set_ylabel("I(Y; Lᵢ) [nats]")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{j}", label=row) for j, row in enumerate(rows_)]
    handles += [Line2D([], [], color="0.3", linestyle=ls, label=name) for ls, name in styles.values()]
    handles.append(Line2D([], [], color="red", marker="x", linestyle="none", label="outside [0, log 10]"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


if len(hframe):
    hfig = heldout_figure(hframe)
    save_figure(hfig, out_dir / "info_plane_heldout.png")
else:
    hfig = plt.figure(figsize=(4, 1))
    hfig.text(0.5, 0.5, "no held-out runs in this profile", ha="center")
glue("heldout_fig", hfig, display=False)
plt.close(hfig)

# %% [markdown]
# ```{glue:figure} heldout_fig
# :name: fig-info-plane-heldout
#
# $I(Y;L_i)$ per layer during training, mean over seeds, one colour per training: the label
# critic's DV value on the training samples (solid), the same critic on the held-out validation
# samples (dashed) and the probe bound $H(Y) - \mathrm{CE}_{\mathrm{val}}$ (dotted). Grey lines: 0 and
# $\log 10$; red crosses: single-seed values outside that range, at their value (not clipped).
# ```

# %% tags=["hide-input"]
if len(hsummary):
    flagged = {q: int((hframe[f"flag_{q}"] != "").sum()) for q in ("I_y", "I_y_val", "I_y_probe_lower")}
    gap = hsummary["I_y_mean"] - hsummary["I_y_val_mean"]
    display(
        Markdown(
            f"Of the {len(hframe)} checkpoint values of each kind, outside $[0, \\log 10]$: {flagged['I_y']} "
            f"on the training samples, {flagged['I_y_val']} held out, {flagged['I_y_probe_lower']} probe "
            f"bounds. At the last checkpoint the training-sample value exceeds the held-out one by "
            f"{gap.min():.2f} to {gap.max():.2f} nats (mean {gap.mean():.2f}) across the "
            f"{len(hsummary)} (training, layer) curves."
        )
    )

    def pm(r, q, digits=3):
        return f"{r[q + '_mean']:.{digits}g} ± {r[q + '_std']:.2g}"

    import pandas as pd

    heldout_table = pd.DataFrame(
        {
            "training": hsummary["row"],
            "layer": hsummary["layer"],
            "I(Y;L) training samples": [pm(r, "I_y") for _, r in hsummary.iterrows()],
            "I(Y;L) held out": [pm(r, "I_y_val") for _, r in hsummary.iterrows()],
            "H(Y) − CE_val (probe)": [pm(r, "I_y_probe_lower") for _, r in hsummary.iterrows()],
            "probe val. accuracy": [
                f"{100 * r['probe_val_accuracy_mean']:.1f} %" for _, r in hsummary.iterrows()
            ],
            "flagged (train / held out / probe)": [
                f"{r['flagged_I_y']} / {r['flagged_I_y_val']} / {r['flagged_I_y_probe_lower']} of {r['points']}"
                for _, r in hsummary.iterrows()
            ],
            "seeds": hsummary["seeds"],
        }
    )
    display(heldout_table.style.hide(axis="index"))

# %% [markdown]
# ## Early stopping of the measurement estimators
#
# The estimators that measure a frozen net (the cross-entropy curves above) run their full
# `measure_steps` in every stored record. Early stopping on a held-out half (issue 15) is wired as
# an option (`TrainConfig.extra["measure_patience"]`, `ibcore.core.measurement.measure_layers_early`,
# the estimators of `ibcore.core.estimators` with the critics of IB training) and measured here on
# one small case, with and without it, against the spread over estimator seeds. It is kept only
# where it moves no value beyond that spread: the option stops the estimator of $I(Y;L_i)$ only.
# These values are on the estimators' own held-out rows (a fifth of the training samples, a tenth
# with early stopping), so they are not the values plotted above.

# %% tags=["hide-input"]
import json

es_path = out_dir / heldout_plane.EARLY_STOPPING_FILE
display(
    Markdown(
        heldout_plane.early_stopping_markdown(json.loads(es_path.read_text()) if es_path.is_file() else None)
    )
)
