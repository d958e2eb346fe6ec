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
# In panel a the grey line is the Gaussian (maximum-entropy) upper bound
# $\tfrac12 \log\lvert I + \Sigma_L / \sigma^2\rvert \ge I(X; L + \varepsilon)$, computed from
# the clean features. Each estimate is the Donsker-Varadhan bound of the trained statistics
# network on held-out samples, in nats.

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

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from myst_nb import glue

from ibcore import figure1, plotting

records = figure1.run_figure1(
    results_dir,
    device=device,
    data_dir=data_dir,
    sigma2_grid=sigma2_grid,
    seeds=seeds,
    steps=steps,
    batch_size=batch_size,
    widths=widths,
    n_samples=n_samples,
    gaussian_dims=gaussian_dims,
    gaussian_samples=gaussian_samples,
)
table = figure1.figure1_table(records)
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
        f"({len(seeds)} seed(s) × {len(sigma2_grid)} noise levels × 2 estimators × 2 panels), "
        f"{steps} training steps of batch {batch_size} each; panel a on the first {n_samples} MNIST "
        f"training images through an MLP of widths {list(widths)}, panel b on {gaussian_samples} "
        f"Gaussian samples with (D, K) = {tuple(gaussian_dims)}. Device: {', '.join(devices)}; "
        f"estimation time {run_seconds:.0f} s (summed over the records, read back when already stored)."
    )
)

# %% [markdown]
# ## Estimates
#
# Mean over seeds (line) and one standard deviation (band, when there are several seeds). The
# $x$-axis is symmetric-logarithmic so that $\sigma^2 = 0$ is shown; the $y$-axis is linear up to
# 1 nat and logarithmic above.

# %% tags=["hide-input"]
plotting.set_style()
fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
titles = {"a": "(a) random 3-layer MLP on MNIST", "b": "(b) linear layer on Gaussian input"}
for ax, panel in zip(axes, ("a", "b"), strict=True):
    part = table[table["panel"] == panel]
    if part.empty:
        continue
    for est in figure1.ESTIMATORS:
        style = plotting.ESTIMATOR_STYLE[est]
        plotting.mean_and_spread_frame(
            ax,
            part[part["estimator"] == est],
            "sigma2",
            "mean",
            label=style["label"],
            color=style["color"],
            marker=style["marker"],
        )
    ref_column, ref_style = ("true_mi", "truth") if panel == "b" else ("upper_bound", "bound")
    ref = part[part["estimator"] == figure1.ESTIMATORS[0]].sort_values("sigma2")
    style = plotting.ESTIMATOR_STYLE[ref_style]
    ax.plot(ref["sigma2"], ref[ref_column], color=style["color"], linestyle="--", label=style["label"])
    ax.text(0.3, 0.95, "true MI = ∞ at σ² = 0", transform=ax.transAxes, fontsize=9, va="top")
    plotting.symlog_zero_axis(ax, part["sigma2"])
    ax.set_yscale("symlog", linthresh=1.0)
    values = part["mean"][part["mean"].abs() < float("inf")]
    ax.set_ylim(min(0.0, 1.5 * values.min()), 3.0 * max(1.0, values.max()))
    ax.set_xlabel("noise variance σ²")
    ax.set_ylabel("estimate of I(X; L + ε) [nats]")
    ax.set_title(titles[panel])
handles = {}
for ax in axes:
    for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
        handles.setdefault(label, handle)
fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, 0.0))
fig.tight_layout(rect=(0, 0.08, 1, 1))
plotting.save_figure(fig, figure1.resolve_results_dir(results_dir) / "figure1.png")
glue("fig1", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig1
# :name: fig-figure1
#
# Estimates of $I(X; L + \varepsilon)$ against the noise variance $\sigma^2$ by MINE and by
# AA-MINE. (a) $L$ is the output of a 3-layer MLP with random weights on MNIST images; the dashed
# line is the Gaussian upper bound on the true MI. (b) $L = WX$ with Gaussian $X$; the dashed
# line is the true MI of Eq. 5. At $\sigma^2 = 0$ the true MI is infinite in both panels.
# ```

# %% tags=["remove-input"]
for key in (
    "aa_zero",
    "mine_zero",
    "ratio_zero",
    "aa_max",
    "mine_max",
    "sigma2_max",
    "aa_max_rel_err",
    "mine_max_rel_err",
):
    glue(f"fig1_{key}", summary[key], display=False)
glue("fig1_aa_monotone", "yes" if summary["aa_monotone"] else "no", display=False)

# %% [markdown]
# ## Verdict
#
# Computed from the estimates above:

# %% tags=["hide-input"]
display(Markdown(figure1.figure1_verdict(summary)))

# %% [markdown]
# ## Numbers
#
# Mean ± standard deviation over seeds of every estimate, with its reference: the true MI of
# Eq. 5 in panel b, and in panel a the Gaussian upper bound, which the true MI cannot exceed.

# %% tags=["hide-input"]
figure1.figure1_display_table(table).style.hide(axis="index")
