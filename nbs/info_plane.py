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
run_missing = True

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from matplotlib.colors import LogNorm
from myst_nb import glue

from ibcore import infoplane, sweep, table1
from ibcore.claims import profile_params
from ibcore.plotting import save_figure, set_style
from ibcore.results import load_records, project_path

set_style()
out_dir = project_path(results_dir)
stored = load_records(out_dir, table1.KIND)
if sweep_params is None:
    sweep_params = profile_params(profile, "beta_sweep")
sweep_configs = table1.configs_from_params(sweep_params) if sweep_params.get("cells") else []
ib_records = sweep.select_records(stored, sweep_configs)
ce_configs, ce_records = [], []
if measure_steps and cells:
    ce_params = dict(
        cells=cells,
        rows=rows,
        seeds=seeds,
        sigma=sigma,
        batch_size=batch_size,
        probe_steps=probe_steps,
        checkpoints=checkpoints,
        checkpoint_probe_steps=checkpoint_probe_steps,
        measure_steps=measure_steps,
    )
    ce_configs = table1.configs_from_params(ce_params)
    if run_missing:
        ce_records = table1.run_configs(ce_configs, out_dir, device=device, data_dir=data_dir, progress=False)
    else:
        ce_records = sweep.select_records(stored, ce_configs)
missing = sweep.missing_configs(ib_records, sweep_configs) + sweep.missing_configs(ce_records, ce_configs)
records = ib_records + ce_records
frame = infoplane.trajectories(records)
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
# mutual information is. The numbers below show how often this happens in these records.

# %% tags=["hide-input"]
if sizes:
    values = frame["I_x"].to_numpy()
    log_n = np.log([sizes[(d, f)] for d, f in zip(frame["dataset"], frame["fraction"], strict=True)])
    above = values > log_n
    per_cell = "; ".join(
        f"{sweep.cell_name(d, f)}: $N$ = {n}, $\\log N$ = {math.log(n):.2f} nats"
        for (d, f), n in sorted(sizes.items())
    )
    display(
        Markdown(
            f"Here $N$, the number of samples each value was computed on, is: {per_cell}. Of the "
            f"{len(values)} recorded values of $I(X;L_i+\\varepsilon)$, {int(above.sum())} "
            f"({100 * above.mean():.0f} %) lie above the $\\log N$ of their cell (largest {values.max():.1f} "
            "nats): read them as “all $N$ samples distinguishable”, not as MI values. $I(Y;L_i)$ is bounded "
            "by $H(Y) \\le \\log 10$ = "
            f"{math.log(10):.2f} nats; its largest recorded value is {frame['I_y'].max():.2f}."
        )
    )
    glue("plane_frac_above", f"{100 * above.mean():.0f} %", display=False)
else:
    display(Markdown("No records: nothing to measure."))


# %% [markdown]
# ## Trajectories
#
# One panel per layer and data set. Colour: $\beta$ (grey: $\beta = 0$); black: cross-entropy.
# Each curve runs through the checkpoints in training order, from a small marker to the arrow head
# at the last checkpoint. The mean over seeds is drawn where there are several.


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
                x, y = curve["I_x"].to_numpy(), curve["I_y"].to_numpy()
                ax.plot(x, y, color=color, linewidth=1.3, label=label)
                marker_sizes = np.linspace(8, 30, max(len(x) - 1, 1))[: len(x) - 1]
                ax.scatter(x[:-1], y[:-1], color=color, s=marker_sizes, zorder=3)
                if len(x) > 1:
                    ax.annotate(
                        "",
                        xy=(x[-1], y[-1]),
                        xytext=(x[-2], y[-2]),
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3),
                    )
                else:
                    ax.scatter(x, y, color=color, s=30, marker=">")
            if (d, f) in sizes:
                ax.axvline(math.log(sizes[(d, f)]), color="0.7", linestyle=":", linewidth=1)
            ax.set_xscale("symlog", linthresh=1.0)
            if len(part) and part["I_x"].min() >= 0:
                ax.set_xlim(left=0)
            ax.set_title(f"{sweep.cell_name(d, f)}, layer {layer}")
            ax.set_xlabel("I(X; Lᵢ+ε) [nats]")
            ax.set_ylabel("I(Y; Lᵢ) [nats]")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="lower center",
        ncol=min(len(handles), 6),
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.tight_layout(rect=(0, 0.1 / len(groups), 1, 1))
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
# the $x$-axis is logarithmic above 1 nat.
# ```

# %% [markdown]
# ## Compression
#
# Per curve: $I(X;L_i+\varepsilon)$ at the first checkpoint, at its peak and at the last one, and
# the relative fall from the peak to the end. Two readings are computed:
#
# - IB training: does the largest $\beta$ end with a lower $I(X;L_i+\varepsilon)$ than the smallest,
#   in each layer?
# - cross-entropy: does $I(X;L_i+\varepsilon)$ fall by more than 10 % after its peak (a compression
#   phase)? With one seed and estimators retrained at each checkpoint this is sensitive to
#   estimator noise.

# %% tags=["hide-input"]
lines = []
for c in infoplane.beta_compression(compression):
    lines.append(
        f"- IB, {sweep.cell_name(c['dataset'], c['fraction'])}, layer {c['layer']}: "
        f"β = {c['beta_large']:g} ends at {c['I_x_large']:.3g} nats, "
        f"β = {c['beta_small']:g} at {c['I_x_small']:.3g}: "
        f"**{'lower' if c['lower'] else 'not lower'}**."
    )
for c in infoplane.ce_compression(compression):
    lines.append(
        f"- Cross-entropy, {sweep.cell_name(c['dataset'], c['fraction'])}, layer {c['layer']}: peak "
        f"{c['I_x_peak']:.3g}, last {c['I_x_last']:.3g} nats (fall {100 * c['drop']:.0f} %): "
        f"**{'compression phase' if c['compressed'] else 'no compression phase'}**."
    )
display(Markdown("\n".join(lines) if lines else "No trajectories to judge."))
display(compression.round(3).style.hide(axis="index"))
