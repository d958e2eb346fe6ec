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
# # The estimators against known truth
#
# Every MI value in this book comes from an estimator. Here each estimator meets tasks whose
# mutual information is known exactly, on the same samples:
#
# - **correlated Gaussians** $x \sim N(0, I_d)$, $y = \rho x + \sqrt{1-\rho^2}\, n$, with
#   $I(X;Y) = -\tfrac d2 \log(1-\rho^2)$;
# - **the linear-Gaussian layer** of Eq. 5, $Y = WX + \varepsilon$, in closed form;
# - **the same samples through $x \mapsto x^3$** on each side: the MI is unchanged, the
#   marginals get heavy tails;
# - **a layer of an MNIST MLP** with $X$ uniform over $N$ images and Gaussian noise: the exact
#   Bhattacharyya and pairwise-KL bounds (Kolchinsky & Tracey 2017) bracket $I(X; L+\varepsilon)$.
#
# Estimators: the project's `MINE` and `AA-MINE` (fixed step budget), `ibcore.estimate_mi` with
# its methods (early stopping, rank-to-Gaussian marginal transform on), and the peers:
# torch-mist's SMILE (when installed) and scikit-learn's KSG `mutual_info_regression` (1-D).
# Bias is in % of the truth; for the MNIST bracket, the distance to the nearer bound (0 inside).

# %% tags=["parameters"]
profile = "tiny"
results_dir = "results/tiny"
battery = None  # battery size: "tiny", "default" or "paper" (None: the profile's name)
compute = True  # run missing records (else only read the stored ones)
device = "cpu"
data_dir = None
n = None  # samples per task (None: the profile's size)
seeds = None  # list of seeds (None: the profile's)
estimators = None  # list of estimator names (None: the profile's)

# %% tags=["remove-cell"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "truth")

import math

import matplotlib.pyplot as plt
import torch
from myst_nb import glue

from ibcore.core.results import project_path
from ibcore.experiments.truth import (
    battery_configs,
    battery_frame,
    battery_params,
    battery_summary,
    estimator_summary,
    load_battery,
    run_battery,
    torch_mist_available,
)
from ibcore.report import pages as report

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
overrides = {k: v for k, v in {"n": n, "seeds": seeds, "estimators": estimators}.items() if v is not None}
size = battery or (profile if profile in ("tiny", "default", "paper") else "tiny")
params = battery_params(size, **overrides)
out_dir = project_path(results_dir)
if compute:
    records = run_battery(params, out_dir, device=device, data_dir=data_dir)
else:
    records = load_battery(out_dir, params)
print(f"{len(records)} of {len(battery_configs(params))} records of profile {profile!r} in {out_dir}")
print("torch-mist available:", torch_mist_available())

# %% [markdown]
# ## Each estimator over the battery
#
# Mean |bias| over its tasks, the median bias, the task where it does worst, and seconds per
# estimate (wall time on the machine that produced the records).

# %% tags=["remove-input"]
if records:
    display(estimator_summary(records).style.format(precision=2, na_rep="—"))  # noqa: F821

# %% [markdown]
# ## Task by task
#
# Bias in % (mean over seeds), its spread (standard deviation over seeds; empty with one seed),
# seconds per estimate and the step training stopped at (the fixed budget for MINE / AA-MINE).

# %% tags=["remove-input"]
if records:
    table = battery_summary(records)
    wide = table["bias_pct"].unstack("estimator").round(1)
    display(wide.style.format(precision=1, na_rep="not run"))  # noqa: F821
    display(table.style.format(precision=3, na_rep="—"))  # noqa: F821

# %% [markdown]
# ## Estimate against truth
#
# Each point is one estimate; the diagonal is the truth. The dotted line is log of the number of
# held-out samples the neural estimates are evaluated on: no sample-based lower bound can
# certify more, and hollow markers are estimates above it (status "above log N") or above the
# exact upper bound (MNIST). MNIST points are drawn at the midpoint of their exact bracket, with the bracket
# as an error bar.

# %% tags=["remove-input"]
if records:
    frame = battery_frame(records)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    markers = "osD^v<>ph*"
    for k, (est, sub) in enumerate(frame.groupby("estimator")):
        color, marker = f"C{k % 10}", markers[k % len(markers)]
        ok = sub["status"] == "certified"
        ax.scatter(sub.loc[ok, "truth"], sub.loc[ok, "value"], s=22, marker=marker, color=color, label=est)
        ax.scatter(
            sub.loc[~ok, "truth"],
            sub.loc[~ok, "value"],
            s=22,
            marker=marker,
            facecolors="none",
            edgecolors=color,
        )
    br = frame[frame["family"] == "mnist"].drop_duplicates("task")
    if len(br):
        yerr = [br["truth"] - br["truth_low"], br["truth_high"] - br["truth"]]
        ax.errorbar(br["truth"], br["truth"], yerr=yerr, fmt="none", ecolor="k", capsize=4, lw=1)
    top = max(frame["truth"].max(), 1.0) * 1.15
    ax.plot([0, top], [0, top], "k-", lw=0.8)
    log_n = math.log(0.2 * params["n"])
    ax.axhline(log_n, color="grey", ls=":", lw=1)
    ax.text(0.02 * top, log_n, f" log N held-out = {log_n:.1f}", va="bottom", color="grey", fontsize=8)
    ax.set_xlim(0, top)
    ax.set_ylim(min(0.0, 1.05 * frame["value"].min()), max(top, log_n * 1.1, 1.05 * frame["value"].max()))
    ax.set_xlabel("true I (nats)")
    ax.set_ylabel("estimate (nats)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Estimators against known truth (profile {profile}, n = {params['n']})")
    glue("truth_fig", fig, display=False)
    plt.close(fig)
    report.show_md(
        "```{glue:figure} truth_fig\n---\nname: fig-truth\nalt: >-\n"
        "  Scatter of every estimate against the true mutual information, one marker shape per "
        "estimator, with the diagonal, log N drawn as a dotted line and hollow markers for "
        "uncertified estimates.\n---\n\n"
        "**Figure S6.** Estimates against the truth. Points on the diagonal are exact; hollow markers "
        "are above log N or above the exact upper bound and certify nothing.\n```"
    )
