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
# # Figure 3: does a large β discretise the first layer?
#
# Figure 3 of {cite:t}`elad2019direct` shows t-SNE embeddings {cite:p}`vandermaaten2008visualizing`
# of the first layer $L_1$ of the MNIST net trained on the IB functional with (a) $\beta = 10^2$ and
# (b) $\beta = 10^{-3}$, and reads the large-$\beta$ picture as a *quantised* representation: the
# penalty $I(X;L_1+\varepsilon)$ reduces the entropy of $L_1$ by shrinking its effective support,
# so points gather into a few tight clusters. A t-SNE picture cannot show this on its own (t-SNE
# normalises distances per point), so beside the embeddings we measure it.
#
# **Measures.** On the first-layer outputs $l_1, \dots, l_n$ of $n$ test images:
#
# - $I(X;L_1+\varepsilon)$ as estimated by AA-MINE at the end of IB training (the value the penalty
#   acted on; the record's metric `I_x`);
# - the **effective number of points** at resolution $h$,
#
#   $$N_{\mathrm{eff}}(h) = \exp\Big(-\frac1n \sum_i \log \frac1n \sum_j
#   e^{-\lVert l_i - l_j\rVert^2 / 2h^2}\Big),$$
#
#   which is 1 when all points coincide, $n$ when all are farther apart than about $h$, and $k$ for
#   $k$ equal, tight clusters. At $h = \sigma$ (the training noise) $\log N_{\mathrm{eff}}$ is the
#   pairwise-distance (KL) upper bound of Kolchinsky and Tracey, the estimator of the nonlinear
#   IB {cite:p}`kolchinsky2017nonlinear`, on $I(X;L_1+\varepsilon)$ for $X$ drawn
#   from the $n$ images: the number of points the noise leaves distinguishable. It falls when points
#   cluster *or* when the whole layer shrinks relative to the noise. At $h$ = `relative_resolution`
#   $\times$ the RMS radius $\sqrt{\tfrac1n\sum_i \lVert l_i - \bar l\rVert^2}$ it is scale-free and
#   only falls when the points form clusters that are tight relative to the layer's own spread:
#   that is the discretisation the paper describes.
#
# All numbers are computed by `ibcore.experiments.representation`.

# %% tags=["parameters"]
# Parameters (papermill overrides them; the defaults are the "tiny" smoke size).
profile = "tiny"
results_dir = "results/tiny"
device = "auto"
data_dir = None
dataset = "mnist"
fraction = 0.01
steps = 20
betas = [100.0, 0.001]
seeds = [0]
sigma = 1.0
batch_size = 128
probe_steps = 50
checkpoints = 2
checkpoint_probe_steps = 20
n_points = 200
perplexity = 30.0
relative_resolution = 0.25
run_missing = False  # True: compute the runs not stored yet here (else an error names the command)

# %% tags=["remove-cell"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "fig3_tsne")

import math
import time

import matplotlib.pyplot as plt
import numpy as np
from myst_nb import glue

from ibcore.core.config import TrainConfig
from ibcore.core.data import load_dataset
from ibcore.core.results import project_path
from ibcore.experiments import infoplane, representation, table1
from ibcore.experiments.sweep import missing_configs
from ibcore.orchestration.compute import ensure_records, notebook_params
from ibcore.report import pages as report
from ibcore.report.plotting import page_figure, save_figure, set_style

set_style()
out_dir = project_path(results_dir)
# the same runs as python3 -m ibcore.prefetch --profile <profile> --only fig3_tsne (e.g. on a GPU host)
configs = representation.configs_from_params(notebook_params("fig3_tsne", globals()))
stored_before = report.stored_run_ids(out_dir, representation.KIND)
records = ensure_records("fig3_tsne", globals())  # stored by the pipeline (or computed here: run_missing)
missing = missing_configs(records, configs)
data = load_dataset(dataset, data_dir, "cpu", fraction=fraction, subset_seed=seeds[0])
x, labels = data.x_test[:n_points], data.y_test[:n_points].numpy()

# %% tags=["remove-input"]
report.show_md(
    report.provenance(
        profile,
        records,
        stored_before=stored_before,
        results_dir=results_dir,
        what="first-layer IB runs",
        expected=len(configs),
        extra=(
            f"{report.cell_name(dataset, fraction)} ({data.source['n_train']} training images), "
            f"$\\beta \\in \\{{{', '.join(report.beta_tex(b) for b in betas)}\\}}$, {steps} steps of "
            f"batch {batch_size} on layer 1 only, noise $\\sigma = {sigma:g}$; the measures and embeddings "
            f"use the first {len(labels)} test images."
        ),
    )
)

# %% tags=["remove-cell"]
t0 = time.perf_counter()
rows, embeddings, curves = [], {}, {}
rels = np.geomspace(0.02, 2.0, 15)
for r in records:
    c = TrainConfig.from_dict(r["config"])
    model = table1.load_model(c, out_dir, kind=representation.KIND)
    rep = representation.layer_representation(model, x)
    m = representation.discretisation_measures(rep, sigma, relative_resolution)
    rows.append(
        {
            "beta": c.beta,
            "seed": c.seed,
            "test_accuracy": 100 * r["metrics"]["test_accuracy"],
            "I_x": r["metrics"]["I_x"][0],
            "I_y": r["metrics"]["I_y"][0],
            **m,
        }
    )
    if c.seed == seeds[0]:
        embeddings[c.beta] = representation.cached_tsne_embedding(
            rep, out_dir / representation.KIND / f"{r['run_id']}.tsne.json", seed=0, perplexity=perplexity
        )
        curves[c.beta] = representation.effective_points_curve(rep, rels)
table = representation.measures_table(rows)
verdict = representation.discretisation_verdict(table)
# the status of each MI value (issue 10): I(X;L_1+eps) against log N and the exact bounds of the
# stored weights (results/<profile>/model_bounds.json); I(Y;L_1) against [0, log 10] and Fano
model_bounds = infoplane.load_model_bounds(out_dir)
status = {}
for r in records:
    c = TrainConfig.from_dict(r["config"])
    bounds = (model_bounds.get(r["run_id"]) or {}).get("layers", {}).get("1")
    upper = bounds["upper"] if bounds else math.nan
    fano = infoplane.fano_lower_bound(r["metrics"]["test_accuracy"], 10, math.log(10))
    status[c.beta] = {
        "I_x_bounds": f"[{bounds['lower']:.3g}, {bounds['upper']:.3g}]" if bounds else "not stored",
        "I_x_status": infoplane.x_status(r["metrics"]["I_x"][0], infoplane.eval_n(r), upper),
        "I_y_status": infoplane.label_status(r["metrics"]["I_y"][0], math.log(10), fano),
    }
table = table.assign(
    **{
        k: [status.get(b, {}).get(k, "") for b in table["beta"]]
        for k in ("I_x_bounds", "I_x_status", "I_y_status")
    }
)
measure_seconds = time.perf_counter() - t0

# %% [markdown]
# ## Embeddings
#
# In {ref}`Figure 3 <fig-fig3>` each point of panels (a) and (b) is one test image, coloured by its
# digit; the embedding is seeded, with perplexity `perplexity` and PCA initialisation. Panel (c)
# shows $N_{\mathrm{eff}}$ at every relative resolution, so that the comparison does not hang on one
# choice of $h$; the dotted line marks `relative_resolution`.

# %% tags=["remove-cell"]
order = sorted(embeddings, reverse=True)
fig, axes = page_figure(1, len(order) + 1, height=2.9)
axes = axes[0]
cmap = plt.get_cmap("tab10")
for k, (ax, b) in enumerate(zip(axes, order, strict=False)):
    e = embeddings[b]
    for digit in range(10):
        sel = labels == digit
        ax.scatter(e[sel, 0], e[sel, 1], s=4, color=cmap(digit), label=str(digit), alpha=0.8, linewidths=0)
    ax.set_title(f"({chr(97 + k)}) $\\beta = {report.beta_tex(b)}$")
    ax.set_xticks([])
    ax.set_yticks([])
ax = axes[-1]
for b in order:
    ax.plot(rels, curves[b], marker="o", ms=3, label=f"$\\beta = {report.beta_tex(b)}$")
ax.axvline(relative_resolution, color="0.5", linestyle=":")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("h / RMS radius")
ax.set_ylabel("effective points")
ax.set_title(f"({chr(97 + len(order))}) N_eff")
ax.legend(fontsize="small")
handles, names = axes[0].get_legend_handles_labels()
fig.tight_layout(rect=(0, 0.1, 1, 1))
fig.legend(handles, names, loc="lower center", ncol=10, title="digit", markerscale=2.5, fontsize="small")
save_figure(fig, out_dir / "fig3_tsne.png")
glue("fig3_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig3_fig
# ---
# name: fig-fig3
# alt: >-
#   Two t-SNE scatter plots of the first layer's outputs for test images coloured by digit, for a
#   large and a small beta, and a log-log plot of the effective number of points against the
#   resolution relative to the layer's radius, one line per beta.
# ---
#
# **Figure 3.** (a, b) t-SNE embeddings of the first-layer representation $L_1$ of the MNIST net
# after IB training of layer 1 with a large and a small $\beta$ (the paper's Figure 3 uses $10^2$
# and $10^{-3}$). (c, ours) The effective number of points $N_{\mathrm{eff}}$ against the resolution
# relative to the layer's RMS radius. The paper reads tight, few clusters in (a) as a quantised
# layer; in (c) that would show as a lower curve for the large $\beta$ at small resolutions.
# ```

# %% [markdown]
# ## Numbers
#
# One row per $\beta$ (mean over seeds when there are several): the linear probe's test accuracy
# on $L_1$ (%), the AA-MINE and MINE values at the end of training (nats), the RMS radius of $L_1$,
# $N_{\mathrm{eff}}$ at $h = \sigma$ and at the relative resolution, and the fraction of ReLU
# outputs that are positive.

# %% tags=["remove-input"]
report.show_html(
    report.html_table(
        table,
        {
            "beta": "β",
            "seeds": "seeds",
            "test_accuracy": "probe accuracy (%)",
            "I_x": "AA-MINE $I(X;L_1+\\varepsilon)$",
            "I_x_status": "its status",
            "I_x_bounds": "exact bounds",
            "I_y": "MINE $I(Y;L_1)$",
            "I_y_status": "its status",
            "radius": "RMS radius",
            "n_eff_noise": "$N_{\\mathrm{eff}}(h=\\sigma)$",
            "n_eff_relative": f"$N_{{\\mathrm{{eff}}}}(h={relative_resolution:g}\\cdot$radius$)$",
            "active_fraction": "ReLU outputs > 0",
        },
        {"beta": report.html_formatter(report.beta_html)},
        numeric=["beta"],
    )
)
report.show_md(
    f"$n$ = {len(labels)} test images, so $N_{{\\mathrm{{eff}}}} \\le$ {len(labels)}; "
    f"measuring and embedding took {measure_seconds:.0f} s."
)

# %% [markdown]
# ## Verdict
#
# Computed from the table above, largest against smallest β:


# %% tags=["remove-input"]
report.show_md(representation.verdict_markdown(verdict))
summary = {
    "profile": profile,
    "n_points": int(len(labels)),
    "dataset": dataset,
    "fraction": fraction,
    "steps": steps,
    "sigma": sigma,
    "relative_resolution": relative_resolution,
    "rows": table.to_dict(orient="records"),
    "verdict": verdict,
}
representation.write_summary(out_dir / representation.SUMMARY_NAME, summary)
if verdict:
    for name, m in verdict["measures"].items():
        glue(f"fig3_{name}_large", report.sig(m["large"]), display=False)
        glue(f"fig3_{name}_small", report.sig(m["small"]), display=False)
    glue("fig3_all_lower", "yes" if verdict["all_lower"] else "no", display=False)

# %% [markdown]
# ## Training choices
#
# Only layer 1 is trained (`max_layers=1`): Figure 3 shows the first layer, whose training does
# not depend on the layers above. The runs are stored under the kind `fig3`
# (`<results_dir>/fig3/`, with the weights as `<run>.model.pt`), apart from the full-depth runs of
# Table 1 and the β sweep. Everything else (statistics networks, optimiser, noise, probe) is the
# layer-by-layer IB training of the [Table 1 page](table1.ipynb).
