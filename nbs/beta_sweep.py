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
# The verdicts below are computed from the runs, each $\beta$ against $\beta = 0$ as a paired
# difference with its 95 % interval. All runs here penalise with the tied critic (see the
# [Table 1 page](table1.ipynb) and the [compression study](compression.ipynb) for the paper's
# penalty, chosen on validation).

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
run_missing = False  # True: compute the runs not stored yet here (else an error names the command)

# %% tags=["remove-cell"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "beta_sweep")


import matplotlib.pyplot as plt
import pandas as pd
from myst_nb import glue

from ibcore.core.results import load_records, project_path
from ibcore.experiments import infoplane, sweep, table1
from ibcore.orchestration.compute import ensure_records, notebook_params
from ibcore.report import pages as report
from ibcore.report.claims import profile_params
from ibcore.report.plotting import mean_and_spread, page_figure, save_figure, set_style, symlog_zero_axis

set_style()
params = notebook_params("beta_sweep", globals())  # the parameters cell, as papermill set it
configs = table1.configs_from_params(params)
out_dir = project_path(results_dir)
stored_before = report.stored_run_ids(out_dir, table1.KIND)
records = ensure_records("beta_sweep", globals())  # stored by the pipeline (or computed here: run_missing)
missing = sweep.missing_configs(records, configs)
table = report.paper_order(sweep.sweep_table(records), then=["beta"])


def sweep_figure(table: pd.DataFrame):
    """Accuracy, I(X;L_i+eps) and I(Y;L_i) against beta, one row of three panels per data set."""
    groups = list(table.groupby(["dataset", "fraction"], sort=False))
    fig, axes = page_figure(len(groups), 3, height=2.7)
    n_layers = sweep.layer_count(table)
    for row, ((d, f), cell) in zip(axes, groups, strict=True):
        cell = cell.sort_values("beta")
        mean_and_spread(row[0], cell["beta"], cell["acc_mean"], cell["acc_std"], color="C0")
        zero = cell[cell["beta"] == 0]
        if len(zero):
            row[0].axhline(zero["acc_mean"].iloc[0], color="0.5", linestyle="--", linewidth=1, label="β = 0")
        row[0].set_ylabel("test accuracy (%)")
        for ax, name, label in ((row[1], "I_x", "I(X;Lᵢ+ε) (nats)"), (row[2], "I_y", "I(Y;Lᵢ) (nats)")):
            for i in range(1, n_layers + 1):
                mean_and_spread(
                    ax,
                    cell["beta"],
                    cell[f"{name}_{i}_mean"],
                    cell[f"{name}_{i}_std"],
                    color=f"C{i}",
                    label=f"layer {i}",
                    marker=".",
                )
            ax.set_ylabel(label)
        for ax in row:
            symlog_zero_axis(ax, cell["beta"])
            ax.tick_params(axis="x", labelrotation=90)
        row[0].set_title(f"{report.cell_name(d, f)}: accuracy", fontsize="medium")
        row[1].set_title("compression term", fontsize="medium")
        row[2].set_title("relevance term", fontsize="medium")
    for ax in axes[-1]:
        ax.set_xlabel("β")
    handles, labels = axes[0][1].get_legend_handles_labels()
    h0, l0 = axes[0][0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.06 / len(groups), 1, 1))
    fig.legend(h0 + handles, l0 + labels, loc="lower center", ncol=n_layers + 1, fontsize="small")
    return fig


def comparison_table(records: list[dict]) -> str:
    """Each beta > 0 against beta = 0: the paired difference of test accuracy with its 95 %
    interval and verdict (:func:`sweep.compare_to_zero`)."""
    rows = pd.DataFrame(sweep.compare_to_zero(records))
    if rows.empty:
        return ""
    return report.html_table(
        rows.assign(
            cell=[report.cell_name(d, f) for d, f in zip(rows.dataset, rows.fraction, strict=True)],
            difference=[f"{d:+.2f}".replace("-", "−") for d in rows.difference],
            interval=[
                f"[{lo:+.2f}, {hi:+.2f}]".replace("-", "−") if n >= 2 else "one seed: none"
                for lo, hi, n in zip(rows.ci_low, rows.ci_high, rows.n, strict=True)
            ],
        ),
        {
            "cell": "data set",
            "beta": "β",
            "n": "paired seeds",
            "acc": "accuracy (%)",
            "acc_zero": "at β = 0 (%)",
            "difference": "paired difference (points)",
            "interval": "95 % interval (points)",
            "verdict": "β beats β = 0?",
        },
        {"beta": report.html_formatter(report.beta_html)},
        numeric=["beta", "difference", "interval"],
    )


mi_sizes = infoplane.eval_sizes(records)  # N of the DV values per cell: log N caps a certified one


def numbers_table(table: pd.DataFrame) -> str:
    """Mean ± std over seeds of the accuracy and of each layer's two information terms (the
    number of seeds has its own column, so a single seed shows its value alone)."""
    n_layers = sweep.layer_count(table)
    shown = table.assign(
        cell=[report.cell_name(d, f) for d, f in zip(table.dataset, table.fraction, strict=True)],
        accuracy=[report.mean_std(m, s) for m, s in zip(table.acc_mean, table.acc_std, strict=True)],
    )
    columns = {"cell": "data set", "beta": "β", "n": "seeds", "accuracy": "accuracy (%)"}
    sizes = [mi_sizes.get((d, f)) for d, f in zip(table.dataset, table.fraction, strict=True)]
    for name, tex in (("I_x", "I(X;L_{i}+\\varepsilon)"), ("I_y", "I(Y;L_{i})")):
        for i in range(1, n_layers + 1):
            shown[f"{name}_{i}"] = [
                report.mean_std(m, s) + infoplane.mi_flag(name, m, n)
                for m, s, n in zip(shown[f"{name}_{i}_mean"], shown[f"{name}_{i}_std"], sizes, strict=True)
            ]
            columns[f"{name}_{i}"] = "$" + tex.replace("{i}", str(i)) + "$"
    return report.html_table(
        shown,
        columns,
        {"beta": report.html_formatter(report.beta_html)},
        numeric=[c for c in columns if c not in ("cell",)],
    )


# %% tags=["remove-input"]
report.show_md(
    report.provenance(
        profile,
        records,
        stored_before=stored_before,
        results_dir=results_dir,
        expected=len(configs),
        extra=(
            "Layer-by-layer IB training on "
            + "; ".join(
                f"{report.cell_name(c['dataset'], c.get('fraction', 1.0))} ({c['steps']} steps a layer)"
                for c in cells
            )
            + f", $\\beta \\in \\{{{', '.join(report.beta_tex(b) for b in betas)}\\}}$, noise "
            f"$\\sigma = {sigma:g}$, batch {batch_size}, probe {probe_steps} steps."
        ),
    )
)
if missing:
    report.show_md(
        f"**Missing** ({len(missing)} runs, not stored and `run_missing` is off): "
        + ", ".join(
            f"{report.cell_name(c.dataset, c.fraction)} $\\beta = {report.beta_tex(c.beta)}$ seed {c.seed}"
            for c in missing
        )
        + "."
    )

# %% [markdown]
# ## Accuracy and information against β
#
# In {ref}`Figure S2 <fig-beta-sweep>` the $\beta$-axis is symmetric-logarithmic: $\beta = 0$ sits
# apart at the left, the positive values on a log scale. Accuracy is the linear probe's on the
# official test set; $I(X;L_i+\varepsilon)$ (AA-MINE, tied critic) and $I(Y;L_i)$ (MINE) are the
# values of the statistics networks' Donsker-Varadhan bounds at the end of layer $i$'s training, on
# the first $\min(n_{\mathrm{train}}, 2048)$ training images (the
# [information-plane page](info_plane.ipynb) shows their range).

# %% tags=["remove-cell"]
if len(table):
    fig = sweep_figure(table)
    save_figure(fig, out_dir / "beta_sweep.png")
else:
    fig, ax = page_figure(1, 1, height=1.0)
    ax.axis("off")
    ax.text(0.5, 0.5, "no sweep records in this profile", ha="center")
glue("sweep_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} sweep_fig
# ---
# name: fig-beta-sweep
# alt: >-
#   Three panels a row, one row per data set, against beta on a symmetric-log axis: test accuracy
#   with a dashed line at its beta = 0 value, then the compression and relevance terms of each
#   layer in nats, with bands of one standard deviation over seeds.
# ---
#
# **Figure S2.** Test accuracy (left), final $I(X;L_i+\varepsilon)$ (middle) and $I(Y;L_i)$ (right)
# of layer-by-layer IB training against $\beta$; one row per data set; mean over seeds, band ± one
# standard deviation. The paper's claim is about the left panels: whether some $\beta > 0$ lies
# above the dashed $\beta = 0$ line; the paired verdicts below decide it.
# ```

# %% [markdown]
# ## Where the penalty helps
#
# Each $\beta > 0$ against $\beta = 0$, paired by seed (runs with one seed share initialisation,
# training subset and batches): the mean of the per-seed differences in test accuracy with its
# 95 % $t$ interval. The verdict **holds** when the interval lies above 0, **does not hold** when it
# lies below 0, and is **inconclusive** when it contains 0 (or fewer than two seeds are paired).
# The intervals are per comparison, not corrected for the number of $\beta$ compared.

# %% tags=["remove-input"]
report.show_md(sweep.verdict_markdown(records))
if comparison := comparison_table(records):
    report.show_html(comparison)
for _, r in table.iterrows():
    glue(
        f"sweep_{r.dataset}_{r.fraction:g}_{r.beta:g}",
        report.mean_std(r.acc_mean, r.acc_std, int(r.n)),
        display=False,
    )

# %% [markdown]
# ## Numbers
#
# Mean ± standard deviation over seeds for each $\beta$: test accuracy (%) and each layer's
# two information terms at the end of its training (nats). Each information value carries its
# status: no flag means certified ($I(X;L_i+\varepsilon)$ below $\log N$, $N$ the samples its DV
# value was computed on, 600 for MNIST 1 % and 2048 for MNIST 100 %; $I(Y;L_i)$ within
# $[0, \log 10]$); "(above log N)" marks a value no sample-based lower bound can certify, and
# "(below 0)" or "(above H(Y))" a label information that cannot be one. No verdict on this page
# uses these values: the verdicts read test accuracy only.

# %% tags=["remove-input"]
report.show_html(numbers_table(table))

# %% tags=["remove-input"]
if paper_results_dir and project_path(paper_results_dir) != out_dir:
    paper_params = profile_params("paper", "beta_sweep")
    paper_configs = table1.configs_from_params(paper_params) if paper_params.get("cells") else []
    stored = sweep.select_records(load_records(project_path(paper_results_dir), table1.KIND), paper_configs)
    paper_missing = sweep.missing_configs(stored, paper_configs)
    if stored:
        report.show_md(
            "## Stored paper-size runs\n\n"
            f"The sweep runs of the `paper` profile stored under `{paper_results_dir}/` "
            f"({len(stored)} of {len(paper_configs)}), read back, never retrained here; "
            "{ref}`Figure S3 <fig-beta-sweep-paper>` draws them as {ref}`Figure S2 <fig-beta-sweep>` does."
        )
        paper_table = report.paper_order(sweep.sweep_table(stored), then=["beta"])
        fig = sweep_figure(paper_table)
        save_figure(fig, out_dir / "beta_sweep_paper.png")
        glue("sweep_paper_fig", fig, display=False)
        plt.close(fig)
        report.show_md(
            "```{glue:figure} sweep_paper_fig\n---\nname: fig-beta-sweep-paper\nalt: >-\n"
            "  The panels of Figure S2 for the stored paper-size sweep runs.\n---\n\n"
            "**Figure S3.** As {ref}`Figure S2 <fig-beta-sweep>`, for the stored runs of the `paper` "
            "profile.\n```"
        )
        report.show_md(sweep.verdict_markdown(stored))
        report.show_html(comparison_table(stored))
        mi_sizes.update(infoplane.eval_sizes(stored))
        report.show_html(numbers_table(paper_table))
        if paper_missing:
            report.show_md(
                "Still missing: "
                + ", ".join(
                    f"{report.cell_name(c.dataset, c.fraction)} $\\beta = {report.beta_tex(c.beta)}$ "
                    f"seed {c.seed}"
                    for c in paper_missing
                )
                + "."
            )
