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
# # The β sweep: accuracy and information against β
#
# Table 1 of {cite:t}`elad2019direct` compares one $\beta$ of the IB functional
# $I(Y;L_i) - \beta I(X;L_i+\varepsilon)$ with $\beta = 0$ ("$I(Y;L_i)$ only") and concludes that the
# compression term is essential for generalisation, above all with 1 % of MNIST. The paper does
# not say how the result depends on $\beta$; Figure 3 uses $\beta = 10^2$ and $10^{-3}$. This page
# trains the same layer-by-layer IB net over a grid of $\beta$ (including 0) and shows the test
# accuracy of the post-trained linear probe and the two information terms at the end of each
# layer's training, mean ± standard deviation over seeds. The runs are Table 1 runs: where a
# configuration coincides with one of the [Table 1 page](table1.ipynb) the record is shared.

# %% tags=["parameters"]
# Parameters (papermill overrides them; the defaults are the "tiny" smoke size).
profile = "tiny"
results_dir = "results/tiny"
paper_results_dir = None
device = "auto"
data_dir = None
cells = [{"dataset": "mnist", "fraction": 0.01, "steps": 20}]
betas = [0.0, 0.001, 1.0]
seeds = [0]
sigma = 1.0
batch_size = 128
probe_steps = 50
checkpoints = 2
checkpoint_probe_steps = 20
run_missing = True

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from ibcore import sweep, table1
from ibcore.claims import profile_params
from ibcore.plotting import mean_and_spread, save_figure, set_style, symlog_zero_axis
from ibcore.results import load_records, project_path

set_style()
params = dict(
    cells=cells,
    betas=betas,
    seeds=seeds,
    sigma=sigma,
    batch_size=batch_size,
    probe_steps=probe_steps,
    checkpoints=checkpoints,
    checkpoint_probe_steps=checkpoint_probe_steps,
)
configs = table1.configs_from_params(params)
out_dir = project_path(results_dir)
if run_missing:
    records = table1.run_configs(configs, out_dir, device=device, data_dir=data_dir, progress=False)
else:
    records = sweep.select_records(load_records(out_dir, table1.KIND), configs)
missing = sweep.missing_configs(records, configs)
table = sweep.sweep_table(records)


# %% [markdown]
# ## Run


# %% tags=["hide-input"]
def run_size(records, configs, missing, profile):
    cell_text = "; ".join(
        f"{sweep.cell_name(c['dataset'], c.get('fraction', 1.0))} with {c['steps']} steps per layer"
        for c in cells
    )
    devices = sorted({r["environment"]["device"] for r in records})
    text = (
        f"Profile **`{profile}`**: {len(records)} of {len(configs)} runs stored "
        f"(β ∈ {{{', '.join(f'{b:g}' for b in betas)}}} × seeds {list(seeds)}); {cell_text}; "
        f"σ = {sigma}, batch {batch_size}, probe {probe_steps} steps. "
        f"Device: {', '.join(devices) or 'none'}; "
        f"training time {sum(r['timings']['train_seconds'] for r in records) / 60:.1f} min "
        "(summed over the records, read back when already stored)."
    )
    return text


display(Markdown(run_size(records, configs, missing, profile)))
if missing:
    display(
        Markdown(
            f"**Missing** ({len(missing)} runs, not stored and `run_missing` is off): "
            + ", ".join(
                f"{sweep.cell_name(c.dataset, c.fraction)} β = {c.beta:g} seed {c.seed}" for c in missing
            )
            + "."
        )
    )


# %% [markdown]
# ## Accuracy and information against β
#
# The $x$-axis is symmetric-logarithmic: $\beta = 0$ sits apart at the left, the positive values
# on a log scale. Accuracy is the linear probe's on the official test set; $I(X;L_i+\varepsilon)$
# (AA-MINE, tied critic) and $I(Y;L_i)$ (MINE) are the DV values of the statistics networks at the
# end of layer $i$'s training, on the first $\min(n_{\mathrm{train}}, 2048)$ training images
# (see the [information-plane page](info_plane.ipynb) for their range). Bands: one standard
# deviation over seeds, where there are several.


# %% tags=["hide-input"]
def sweep_figure(table, title_suffix=""):
    groups = list(table.groupby(["dataset", "fraction"], sort=False))
    fig, axes = plt.subplots(len(groups), 3, figsize=(14, 3.8 * len(groups)), squeeze=False)
    for row, ((d, f), cell) in zip(axes, groups, strict=True):
        cell = cell.sort_values("beta")
        mean_and_spread(row[0], cell["beta"], cell["acc_mean"], cell["acc_std"], color="C0")
        zero = cell[cell["beta"] == 0]
        if len(zero):
            row[0].axhline(zero["acc_mean"].iloc[0], color="0.5", linestyle="--", linewidth=1, label="β = 0")
            row[0].legend(loc="lower left")
        row[0].set_ylabel("test accuracy (%)")
        n_layers = len(
            [c for c in cell.columns if c.startswith("I_x_") and c[4:-5].isdigit() and c.endswith("_mean")]
        )
        for ax, name, label in ((row[1], "I_x", "I(X;Lᵢ+ε) [nats]"), (row[2], "I_y", "I(Y;Lᵢ) [nats]")):
            for i in range(1, n_layers + 1):
                mean_and_spread(
                    ax,
                    cell["beta"],
                    cell[f"{name}_{i}_mean"],
                    cell[f"{name}_{i}_std"],
                    color=f"C{i}",
                    label=f"layer {i}",
                )
            ax.set_ylabel(label)
            ax.legend(loc="best")
        for ax in row:
            symlog_zero_axis(ax, cell["beta"])
            ax.set_xlabel("β")
        row[0].set_title(f"{sweep.cell_name(d, f)}: accuracy{title_suffix}")
        row[1].set_title("compression term")
        row[2].set_title("relevance term")
    fig.tight_layout()
    return fig


if len(table):
    fig = sweep_figure(table)
    save_figure(fig, out_dir / "beta_sweep.png")
    glue("sweep_fig", fig, display=False)
    plt.close(fig)
else:
    fig = plt.figure(figsize=(4, 1))
    fig.text(0.5, 0.5, "no sweep records in this profile", ha="center")
    glue("sweep_fig", fig, display=False)
    plt.close(fig)

# %% [markdown]
# ```{glue:figure} sweep_fig
# :name: fig-beta-sweep
#
# Test accuracy (left), final $I(X;L_i+\varepsilon)$ (middle) and $I(Y;L_i)$ (right) of
# layer-by-layer IB training against $\beta$; one row per data set. Mean over seeds, band ± one
# standard deviation.
# ```

# %% [markdown]
# ## Where the penalty helps
#
# Each $\beta > 0$ against $\beta = 0$: the difference in mean test accuracy, and whether it
# exceeds the combined seed spread $\sqrt{s_\beta^2 + s_0^2}$ (with one seed there is no spread
# and only the sign is reported).

# %% tags=["hide-input"]
display(Markdown(sweep.verdict_markdown(table)))
comparison = pd.DataFrame(sweep.compare_to_zero(table))
if len(comparison):
    display(comparison.round(2).style.hide(axis="index"))
for _, r in table.iterrows():
    glue(
        f"sweep_{r.dataset}_{r.fraction:g}_{r.beta:g}",
        f"{r.acc_mean:.2f}" + ("" if pd.isna(r.acc_std) else f" ± {r.acc_std:.2f}"),
        display=False,
    )

# %% [markdown]
# ## Numbers
#
# Mean and standard deviation over seeds per β; `n` seeds.

# %% tags=["hide-input"]
cols = ["dataset", "fraction", "beta", "n", "acc_mean", "acc_std"] + [
    c for c in table.columns if c.startswith(("I_x_", "I_y_")) and not c.startswith(("I_x_last", "I_y_last"))
]
display(table[cols].round(3).style.hide(axis="index"))

# %% [markdown]
# ## Stored paper-size runs
#
# When `paper_results_dir` is set, the sweep records stored there by the `paper` profile are shown
# as well (read back, never retrained here), with what is still missing.

# %% tags=["hide-input"]
if paper_results_dir and project_path(paper_results_dir) != out_dir:
    paper_params = profile_params("paper", "beta_sweep")
    paper_configs = table1.configs_from_params(paper_params) if paper_params.get("cells") else []
    stored = sweep.select_records(load_records(project_path(paper_results_dir), table1.KIND), paper_configs)
    paper_missing = sweep.missing_configs(stored, paper_configs)
    display(
        Markdown(
            f"**Stored records in `{paper_results_dir}`** (profile `paper`): {len(stored)} of "
            f"{len(paper_configs)} sweep runs."
        )
    )
    if stored:
        paper_table = sweep.sweep_table(stored)
        fig = sweep_figure(paper_table, " (paper profile, stored)")
        save_figure(fig, out_dir / "beta_sweep_paper.png")
        plt.show()
        display(Markdown(sweep.verdict_markdown(paper_table)))
        display(
            paper_table[
                [
                    "dataset",
                    "fraction",
                    "beta",
                    "n",
                    "steps",
                    "acc_mean",
                    "acc_std",
                    "I_x_last_mean",
                    "I_y_last_mean",
                ]
            ]
            .round(3)
            .style.hide(axis="index")
        )
    if paper_missing:
        by_cell = pd.DataFrame(
            [{"cell": sweep.cell_name(c.dataset, c.fraction), "beta": c.beta} for c in paper_missing]
        )
        gaps = []
        for cell, part in by_cell.groupby("cell", sort=False):
            gap_betas = ", ".join(f"{b:g}" for b in sorted(set(part.beta)))
            gaps.append(f"{cell}: {len(part)} runs (β ∈ {{{gap_betas}}})")
        display(Markdown("Still missing: " + "; ".join(gaps) + "."))
else:
    display(Markdown("No separate stored paper-size records for this profile."))
