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
# # Figure 1: MINE vs architecture-aware MINE
#
# The compression term of the noise-regularised IB functional is $I(X; L_i + \varepsilon)$, the
# mutual information (MI) between the input $X$ and a noisy copy of the representation
# $L_i = F_i(X)$ of a deterministic net, with $\varepsilon \sim \mathcal{N}(0, \sigma^2 I)$.
# Section 3 of {cite:t}`elad2019direct` claims that:
#
# - the standard MINE {cite:p}`belghazi2018mine`, a statistics network on the pair
#   $(x, l + \varepsilon)$, does **not** grow without bound as $\sigma^2 \to 0$, although the
#   true MI becomes infinite at $\sigma^2 = 0$ (Sec. 2): its estimate is inconsistent there;
# - the architecture-aware MINE (AA-MINE), whose statistics network holds a copy of layers
#   $1, \dots, i$ and so only has to check whether $F_i(x)$ is close to the second argument,
#   drives the Donsker-Varadhan objective to infinity at $\sigma^2 = 0$ and, as the noise grows,
#   is stable and estimates decreasing values of the MI.
#
# The paper shows this on a 3-layer MLP with random weights (panel a below). Because the true MI
# of that net is unknown, panel b adds a case with a known answer: a linear layer $L = WX$ on
# Gaussian input, where the MI is given in closed form by Eq. 5,
# $I = \tfrac12 \log\lvert W \Sigma_X W^\top + \sigma^2 I\rvert - \tfrac12 \log\lvert\sigma^2 I\rvert$.
# Each estimate is the Donsker-Varadhan (DV) bound of the trained statistics network on $N$
# held-out samples, in nats.
#
# **Exact references in panel a.** On the held-out samples the input distribution is the
# empirical one, $X$ uniform over $N$ images, so $L + \varepsilon$ is a mixture of $N$ Gaussians and
# $I(X; L + \varepsilon)$ is pinned between the Bhattacharyya lower and the pairwise-KL upper bound
# of Kolchinsky and Tracey (2017, *Estimating mixture entropy with pairwise distances*; both at
# most $\log N$); a Monte Carlo average of
# $\log p(z\mid x) - \log p(z)$ gives its value. They are computed from the layer output, which
# is rebuilt from the seed of the random net (a compute step that stores them in
# `figure1_reference.json` beside the records; this page only reads them). The dashed line is the
# Gaussian (maximum-entropy) upper bound $\tfrac12 \log\lvert I + \Sigma_L / \sigma^2\rvert$ of
# the population, which no estimate of the continuous-input MI can exceed.
#
# **Status of every estimate** (filled markers: certified; hollow: not):
#
# - *certified*: below $\log N$ and below every known upper bound (panel a: the pairwise-KL and
#   the Gaussian bound of the held-out points; panel b: the true MI of Eq. 5);
# - *above log N*: no sample-based lower bound can certify more than $\log N$ nats;
# - *above upper bound*: not a value of the MI at all.
#
# Only certified values enter the verdicts below.

# %% tags=["parameters"]
# Parameters (papermill overrides them; the defaults are the "tiny" smoke size).
profile = "tiny"
results_dir = "results/tiny"
device = "auto"
data_dir = None
sigma2_grid = [0.0, 1e-3, 1e-2, 1e-1, 1.0]
steps = 100
batch_size = 128
seeds = [0]
widths = [784, 256, 128, 64]
n_samples = 1500
gaussian_dims = [8, 2]
gaussian_samples = 3000
training_critic = True  # panel b also runs the two forms of AA-MINE that IB training uses
early_stopping = None  # {estimator: {patience, eval_every, min_steps, min_delta}}; None: full budget
run_missing = False  # True: compute the runs not stored yet here (else an error names the command)

# %% tags=["remove-cell"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "fig1_estimators")

import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from myst_nb import glue

from ibcore.experiments import figure1
from ibcore.orchestration.compute import ensure_records
from ibcore.report import plotting

records = ensure_records("fig1_estimators", globals())  # stored by the pipeline (or here: run_missing)
references = figure1.ensure_references(results_dir, records, data_dir=data_dir)
table = figure1.figure1_table(records, references)
summary = figure1.figure1_summary(table)

# %% [markdown]
# ## Run
#
# The size of the run that produced this page:

# %% tags=["hide-input"]
devices = sorted({r["environment"]["device"] for r in records})
run_seconds = sum(r["timings"]["total_s"] for r in records)
display(
    Markdown(
        f"Profile **{profile}**: {len(records)} estimates "
        f"({len(seeds)} seed(s) × {len(sigma2_grid)} noise levels × (2 estimators in panel a, "
        f"{4 if training_critic else 2} in panel b)), "
        f"{steps} training steps of batch {batch_size} each; panel a on the first {n_samples} MNIST "
        f"training images through an MLP of widths {list(widths)}, panel b on {gaussian_samples} "
        f"Gaussian samples with (D, K) = {tuple(gaussian_dims)}. Device: {', '.join(devices)}; "
        f"estimation time {run_seconds:.0f} s (summed over the records, read back when already stored)."
    )
)
if training_critic:
    display(
        Markdown(
            "Panel b's AA-MINE is the critic of the paper's Fig. 2 with a *frozen exact copy* of the "
            "layer, whose family contains the Gaussian optimum. Panel b also runs **the two forms of "
            "AA-MINE that layer-by-layer IB training uses** for $I(X; L_i + \\varepsilon)$, on the "
            "same samples, with the same steps and batch size:\n\n"
            "- **tied critic** (`tied`, the value every training record stores as $I_x$): one learnt "
            "scale, the layer itself as the copy, $-\\log p(z)$ modelled by the mixture over the batch;\n"
            "- **penalty critic** (`aamine`, the paper's penalty): the statistics network and optimizer "
            "of `AAMinePenalty`, with its own copy of the layer trained at the full learning rate and "
            f"training's hidden sizes {list(figure1.PENALTY_HIDDEN)}; the layer is fixed here, so this "
            "checks the critic, not its lag behind a moving layer."
        )
    )
else:
    display(
        Markdown(
            "**Not run in this profile:** panel b with the forms of AA-MINE that IB training uses. "
            "Panel b's AA-MINE here is the critic of the paper's Fig. 2, a frozen exact copy of the "
            "layer with a learnt $g(z)$, whose family contains the Gaussian optimum; it does not "
            "validate the values measured during training."
        )
    )

# %% [markdown]
# ## Estimates
#
# Mean over seeds (markers) and one standard deviation (band, when there are several seeds),
# against $\sigma^2 > 0$ on a logarithmic axis; the $y$-axis is linear up to 1 nat and logarithmic
# above. $\sigma^2 = 0$ has its own column on the left: the true MI is infinite there for a
# continuous input, and AA-MINE's DV value is set by the floor of its critic's scale, not by the
# data, so it is drawn as an arrow to "∞" rather than as a number (the table below gives the value
# and its status). The dotted line is $\log N$.

# %% tags=["hide-input"]
import math

import numpy as np
from matplotlib.lines import Line2D

from ibcore.core.bounds import CERTIFIED

plotting.set_style()
STYLES = {
    **plotting.ESTIMATOR_STYLE,
    "tied": {"label": figure1.ESTIMATOR_LABELS["tied"], "color": "#029e73", "marker": "D"},
    "aamine_penalty": {
        "label": figure1.ESTIMATOR_LABELS["aamine_penalty"],
        "color": "#cc78bc",
        "marker": "v",
    },
}


def draw_status_markers(ax, part, style):
    """Mean ± std line with filled markers where certified and hollow ones elsewhere."""
    part = part.sort_values("sigma2")
    line = plotting.mean_and_spread_frame(
        ax, part, "sigma2", "mean", label=style["label"], color=style["color"], marker=None
    )
    ok = (part["status"] == CERTIFIED).to_numpy()
    for mask, face in ((ok, style["color"]), (~ok, "white")):
        ax.scatter(
            part["sigma2"][mask],
            part["mean"][mask],
            marker=style["marker"],
            s=36,
            facecolors=face,
            edgecolors=style["color"],
            linewidths=1.4,
            zorder=4,
        )
    return line


fig = plt.figure(figsize=(12, 4.8))
grid = fig.add_gridspec(1, 5, width_ratios=[1.1, 7, 1.4, 1.1, 7], wspace=0.05)
titles = {"a": "(a) random 3-layer MLP on MNIST", "b": "(b) linear layer on Gaussian input"}
log_n = {}
for panel, (c0, c1) in zip(("a", "b"), ((0, 1), (3, 4)), strict=True):
    part = table[table["panel"] == panel]
    zero_ax = fig.add_subplot(grid[c0])
    ax = fig.add_subplot(grid[c1], sharey=zero_ax)
    if part.empty:
        ax.text(0.5, 0.5, "not run in this profile", transform=ax.transAxes, ha="center")
        continue
    pos, zero = part[part["sigma2"] > 0], part[part["sigma2"] == 0]
    finite = pos["mean"][np.isfinite(pos["mean"])]
    top = 3.0 * max(1.0, float(finite.max()), float(pos["upper_bound"].replace(math.inf, np.nan).max()))
    for est in figure1.ALL_ESTIMATORS:
        if (pos["estimator"] == est).any():
            draw_status_markers(ax, pos[pos["estimator"] == est], STYLES[est])
    ref = pos[pos["estimator"] == figure1.ESTIMATORS[0]].sort_values("sigma2")
    n_hold = int(part["holdout"].min())
    log_n[panel] = math.log(n_hold)
    ax.axhline(
        log_n[panel], color="0.45", linestyle=":", linewidth=1.2, label=f"log N (N = {n_hold} held out)"
    )
    if panel == "b":
        style = plotting.ESTIMATOR_STYLE["truth"]
        ax.plot(ref["sigma2"], ref["true_mi"], color=style["color"], linestyle="--", label=style["label"])
    else:
        style = plotting.ESTIMATOR_STYLE["bound"]
        ax.plot(ref["sigma2"], ref["upper_bound"], color=style["color"], linestyle="--", label=style["label"])
        if ref["ref_lower"].notna().any():
            ax.fill_between(
                ref["sigma2"],
                ref["ref_lower"],
                ref["ref_upper"],
                color="0.2",
                alpha=0.12,
                linewidth=0,
                label="exact bounds, X uniform over N (Bhattacharyya / pairwise KL)",
            )
            ax.plot(ref["sigma2"], ref["ref_mc"], color="0.2", linewidth=1, label="exact value (Monte Carlo)")
    ax.set_xscale("log")
    ax.set_xticks(sorted(pos["sigma2"].unique()))
    ax.set_xticklabels([plotting.format_tick(v) for v in sorted(pos["sigma2"].unique())])
    ax.minorticks_off()
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0.0, top)
    ax.tick_params(labelleft=False)
    ax.set_xlabel("noise variance σ²")
    ax.set_title(titles[panel])
    # the sigma^2 = 0 column: no axis position, no floor constant
    zero_ax.set_xlim(-1, 1)
    zero_ax.set_xticks([0])
    zero_ax.set_xticklabels(["0"])
    zero_ax.axhline(log_n[panel], color="0.45", linestyle=":", linewidth=1.2)
    present = [e for e in figure1.ALL_ESTIMATORS if (zero["estimator"] == e).any()]
    for k, est in enumerate(present):
        style = STYLES[est]
        row = zero[zero["estimator"] == est].iloc[0]
        x0 = -0.5 + k / max(len(present) - 1, 1)
        if est != "mine":
            zero_ax.annotate(
                "∞",
                xy=(x0, 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(x0, 0.72),
                textcoords=("data", "axes fraction"),
                ha="center",
                color=style["color"],
                fontsize=9,
                arrowprops=dict(arrowstyle="-|>", color=style["color"], lw=1.4),
            )
        else:
            face = style["color"] if row["status"] == CERTIFIED else "white"
            zero_ax.scatter(
                [x0], [row["mean"]], marker=style["marker"], s=36, facecolors=face, edgecolors=style["color"]
            )
    zero_ax.set_ylabel("estimate of I(X; L + ε) [nats]")
    zero_ax.grid(False)
handles = {}
for ax in fig.axes:
    for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
        handles.setdefault(label, handle)
handles["filled: certified"] = Line2D([], [], marker="o", color="0.3", linestyle="none")
handles["hollow: above log N or an upper bound"] = Line2D(
    [], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none"
)
fig.legend(
    handles.values(), handles.keys(), loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0), fontsize=9
)
fig.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.32)
plotting.save_figure(fig, figure1.resolve_results_dir(results_dir) / "figure1.png")
glue("fig1", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig1
# :name: fig-figure1
#
# Estimates of $I(X; L + \varepsilon)$ against the noise variance $\sigma^2$ by MINE and by
# AA-MINE; filled markers are certified values, hollow ones are above $\log N$ or above an upper
# bound. (a) $L$ is the output of a 3-layer MLP with random weights on MNIST images; the grey band
# holds the exact value for $X$ uniform over the held-out images (thin line: its Monte Carlo value),
# the dashed line is the Gaussian upper bound of the population. (b) $L = WX$ with Gaussian $X$;
# the dashed line is the true MI of Eq. 5. At $\sigma^2 = 0$ (left columns) the true MI is
# infinite in both panels; AA-MINE's value there is drawn as "→ ∞".
# ```

# %% tags=["remove-input"]
for key in (
    "aa_zero",
    "mine_zero",
    "aa_max",
    "mine_max",
    "sigma2_max",
    "aa_slope",
    "mine_slope",
    "ref_slope",
    "aa_max_rel_err",
    "mine_max_rel_err",
):
    glue(f"fig1_{key}", summary[key], display=False)
glue(
    "fig1_aa_monotone",
    {True: "yes", False: "no", None: "not measurable"}[summary["aa_monotone"]],
    display=False,
)

# %% [markdown]
# ## Verdict
#
# Computed from the estimates above:

# %% tags=["hide-input"]
display(Markdown(figure1.figure1_verdict(summary)))

# %% [markdown]
# ## Numbers
#
# Mean ± standard deviation over seeds of every estimate, its status (the worst over seeds, with
# the count of certified seeds when they differ) and its references: the true MI of Eq. 5 in
# panel b; in panel a the exact bounds [Bhattacharyya, pairwise KL] and the Monte Carlo value for
# $X$ uniform over the $N$ held-out images (means over seeds), and the Gaussian upper bound of the
# population.

# %% tags=["hide-input"]
n_above, excess = figure1.truth_excess(figure1.figure1_frame(records, references))
if n_above:
    display(
        Markdown(
            f"In panel b, {n_above} single-seed estimates at σ² > 0 exceed the true MI of Eq. 5, by at most "
            f"{100 * excess:.1f} %. A DV value on held-out samples is a sample mean: near the optimum it "
            "fluctuates around the true MI by its sampling error, so a value above the truth is no MI "
            'value and is marked "above upper bound" however small the excess.'
        )
    )
figure1.figure1_display_table(table).style.hide(axis="index")

# %% [markdown]
# ## Early stopping
#
# Every estimator above can stop early (issue 15): the DV bound is evaluated on half of the
# held-out samples every few steps, training stops once it has not gained for a few evaluations,
# and the best critic's bound on the *other* half is the estimate (so its $N$, and $\log N$, are
# halved). Whether that changes Figure 1 was measured by running the same estimates with and
# without it, paired by seed; the comparisons stored beside the records:

# %% tags=["hide-input"]
from ibcore.experiments import figure1_early

comparisons = figure1_early.load_early_stopping(results_dir)
for data in comparisons:
    display(Markdown(figure1_early.early_stopping_markdown(data)))
if not comparisons:
    display(Markdown("No comparison with and without early stopping is stored for this profile."))
display(Markdown(figure1_early.profile_choice_markdown(early_stopping, steps, comparisons)))
