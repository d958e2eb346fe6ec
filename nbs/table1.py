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
# # Table 1: cross-entropy vs layer-by-layer IB training
#
# The paper's central experiment (Sec. 4, Table 1): a net trained **layer by layer**, each layer on
# the noise-regularised IB functional $I(Y;L_i) - \beta I(X;L_i+\varepsilon)$ (Eq. 2) and then
# frozen, followed by one post-trained linear layer, is compared with the same architecture trained
# end to end with cross-entropy. The paper reports that full IB training matches or beats
# cross-entropy, and that dropping the compression term ($\beta = 0$, "$I(Y;L_i)$ only")
# generalises worse.

# %% tags=["parameters"]
profile = "tiny"
results_dir = "results/tiny"
paper_results_dir = None
device = "auto"
data_dir = None
cells = [{"dataset": "mnist", "fraction": 0.01, "steps": 20, "ce_steps": 60}]
rows = ["ce", "iy", "ib"]
seeds = [0, 1]
beta = 0.001
sigma = 1.0
batch_size = 128
probe_steps = 50
checkpoints = 2
checkpoint_probe_steps = 20
# Full-IB runs with other settings, shown beside the cell's full-IB row ("what we tried"):
# {dataset, fraction, seeds?, and any of steps, beta, sigma, lr, critic_lr, batch_size, widths, ...}
variants = [{"dataset": "mnist", "fraction": 0.01, "sigma": 2.0, "seeds": [0]}]
run_missing = True

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from ibcore import table1
from ibcore.claims import profile_params
from ibcore.plotting import set_style
from ibcore.results import load_records, project_path
from ibcore.sweep import select_records

set_style()
params = dict(
    cells=cells,
    rows=rows,
    seeds=seeds,
    beta=beta,
    sigma=sigma,
    batch_size=batch_size,
    probe_steps=probe_steps,
    checkpoints=checkpoints,
    checkpoint_probe_steps=checkpoint_probe_steps,
)
configs = table1.configs_from_params(params)
out_dir = project_path(results_dir)
variant_configs = table1.variant_configs(dict(params, beta=beta, variants=variants))
if run_missing:
    records = table1.run_configs(configs, out_dir, device=device, data_dir=data_dir)
    variant_records = table1.run_configs(variant_configs, out_dir, device=device, data_dir=data_dir)
else:
    records = select_records(load_records(out_dir, table1.KIND), configs)
    variant_records = select_records(load_records(out_dir, table1.KIND), variant_configs)
summary = table1.summarise(records)

# %% [markdown]
# ## Our run
#
# The table below comes from the records this page's profile produced. `n` is the number of seeds
# per cell, `steps` the training steps per layer (IB rows) or in total (cross-entropy), `seconds` the
# mean wall time of one run on `device` (the stored CPU records were trained two or three runs at a
# time on a 2-core machine, so their `seconds` are upper bounds, not a benchmark: see the
# performance page).

# %%
display(
    Markdown(
        f"**Profile `{profile}`**: {len(records)} runs, seeds {list(seeds)}, "
        f"sigma = {sigma}, beta of the full-IB row = {beta}, batch {batch_size}."
    )
)
shown = summary[["dataset", "fraction", "method", "mean", "std", "n", "paper", "steps", "seconds", "device"]]
shown = shown.round({"mean": 2, "std": 2, "seconds": 1})
display(shown)
glue("table1_ours", shown, display=False)


# %%
def verdicts(summary):
    lines = []
    for c in table1.claims(summary):
        same = "agrees with" if c["ours"] == c["paper"] else "differs from"
        lines.append(
            f"- {c['dataset']} {100 * c['fraction']:g} %: `{c['claim']}` is "
            f"{'true' if c['ours'] else 'false'} in our run (difference {c['difference']:+.2f} points), "
            f"which {same} the paper."
        )
    return "\n".join(lines)


display(Markdown("### Claims checked on this run\n" + verdicts(summary)))
for _, r in summary.iterrows():
    glue(
        f"t1_{r.dataset}_{r.fraction:g}_{r.row}",
        f"{r['mean']:.2f} ± {0 if pd.isna(r['std']) else r['std']:.2f}",
        display=False,
    )

# %%
fig, axes = plt.subplots(
    1,
    max(1, summary.groupby(["dataset", "fraction"]).ngroups),
    squeeze=False,
    figsize=(4.5 * max(1, summary.groupby(["dataset", "fraction"]).ngroups), 3.6),
)
for ax, ((d, f), cell) in zip(axes[0], summary.groupby(["dataset", "fraction"], sort=False), strict=False):
    x = range(len(cell))
    ax.bar(
        x,
        cell["mean"],
        yerr=cell["std"].fillna(0),
        capsize=4,
        color="C0",
        alpha=0.8,
        label="ours (mean ± std)",
    )
    ax.scatter(x, cell["paper"], color="C3", marker="D", zorder=3, label="paper")
    ax.set_xticks(list(x), [{"ce": "CE", "iy": "I(Y;L)", "ib": "IB"}[r] for r in cell.row])
    lo = min(cell["mean"].min(), cell["paper"].min(skipna=True) if cell["paper"].notna().any() else 100)
    ax.set_ylim(max(0, lo - 5), 100)
    ax.set_title(f"{d} {100 * f:g} %")
    ax.set_ylabel("test accuracy (%)")
axes[0][0].legend(loc="lower right")
fig.tight_layout()
fig.savefig(out_dir / "table1.png", dpi=150)
glue("table1_fig", fig, display=False)
plt.show()

# %% [markdown]
# ### Variants of the full-IB row
#
# Runs of the full-IB row with one setting changed (named in `setting`), to see what limits a
# cell that falls short of the paper: more steps a layer, another noise level $\sigma$, another
# width. The first line of each cell is the table's own full-IB row.

# %%
if variant_records:
    display(
        table1.variants_frame(records, variant_records, dict(params, beta=beta)).round(
            {"mean": 2, "std": 2, "seconds": 1}
        )
    )
else:
    display(Markdown("This profile runs no variants."))

# %% [markdown]
# ## Stored paper-size runs
#
# When `paper_results_dir` is set, the records stored there (the `paper` profile, resumed from
# `results/paper` in the repository) are shown as well, read back without retraining. Their size is
# listed beside each number.

# %%
if paper_results_dir and project_path(paper_results_dir) != out_dir:
    # exactly the Table 1 runs of the paper profile (the beta sweep shares the folder)
    stored = select_records(
        load_records(project_path(paper_results_dir), table1.KIND),
        table1.configs_from_params(profile_params("paper", "table1")),
    )
    if stored:
        paper_summary = table1.summarise(stored)
        display(Markdown(f"**Stored records in `{paper_results_dir}`**: {len(stored)} runs."))
        display(
            paper_summary[
                [
                    "dataset",
                    "fraction",
                    "method",
                    "beta",
                    "mean",
                    "std",
                    "n",
                    "paper",
                    "steps",
                    "seconds",
                    "device",
                ]
            ].round({"mean": 2, "std": 2, "seconds": 1})
        )
        display(Markdown(verdicts(paper_summary)))
        paper_params = profile_params("paper", "table1")
        stored_variants = select_records(
            load_records(project_path(paper_results_dir), table1.KIND), table1.variant_configs(paper_params)
        )
        if stored_variants:
            display(Markdown("Variants of the full-IB row stored with them (one setting changed each):"))
            display(
                table1.variants_frame(stored, stored_variants, paper_params).round(
                    {"mean": 2, "std": 2, "seconds": 1}
                )
            )
    else:
        display(Markdown(f"No stored records in `{paper_results_dir}` yet: run `make all PROFILE=paper`."))

# %% [markdown]
# ## Data and run size
#
# Each record names the data file it was trained on (path and sha256). The CIFAR-10 copy used here
# was once re-encoded as JPEG (quality 75), so absolute CIFAR-10 accuracies can differ slightly from
# numbers on the original files.

# %%
sources = pd.DataFrame(
    [
        {
            **{k: r["config"][k] for k in ("dataset", "fraction", "seed")},
            "file": r["data_source"]["file"].split("/")[-1],
            "sha256": r["data_source"]["sha256"][:12],
            "n_train": r["data_source"]["n_train"],
        }
        for r in records
    ]
).drop_duplicates()
display(sources)

# %% [markdown]
# ## Training choices (ours: the supplementary material is not available)
#
# - MNIST net: MLP 784-512-256-10, ReLU after the hidden layers, the last layer linear. CIFAR-10
#   net: three blocks of 3x3 convolution (32, 64, 128 channels), ReLU and 2x2 max-pooling, then one
#   linear layer to 10 outputs. Both are parameters (`widths`, `channels`).
# - Cross-entropy: Adam, learning rate 1e-3, batch 128, as many updates as the IB net makes over
#   all its layers unless `ce_steps` is given; the net's own output is the prediction.
# - IB: per layer, `steps` alternations of one update of the statistics networks (Adam 1e-3, MINE's
#   moving-average gradient) and one update of the layer (Adam 1e-3) on the batch DV bounds;
#   $I(Y;L_i)$ by MINE with $T(l,y) = f(l)_y$, $I(X;L_i+\varepsilon)$ by AA-MINE whose copy of layers
#   $1..i$ is tied to the layers (see the method page), noise $\sigma = 1$ on the standardised
#   inputs' representations; then a linear probe (Adam 1e-2, `probe_steps` steps, batch 256).
# - Run lengths of the `paper` profile (ours; the paper does not give them): MNIST 1 %: 2000 steps
#   a layer for the IB rows, 6000 for cross-entropy; MNIST 100 %: 5000 / 15000; CIFAR-10: 1500 steps
#   a layer (about 3.8 epochs of batch 128 a layer) / 6000 (about 15 epochs). The CIFAR-10 runs skip
#   the linear probe at the checkpoints (each pushes all 50 000 images through the conv-net, which
#   would double a CPU run); their final probe and the per-checkpoint MI bounds are as for MNIST.
# - Data: the 1 % subset is class-balanced (60 images a class), drawn with the run's seed; the test
#   set is always the full official one; no augmentation.
