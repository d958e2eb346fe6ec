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
# # The paper's claims against our measurements
#
# One row per claim of {cite:t}`elad2019direct` (and one from the information-plane literature it
# discusses), with the numbers our records give, a verdict computed from them and a link to the
# page that shows the evidence. Each row names the profile whose records produced it: the profile
# of this build and, where stored, the `paper` profile's records under `paper_results_dir`
# (labelled "paper (stored)"). A claim without records in a profile is "not measured in this
# profile". Claims about test accuracy are decided by paired differences over seeds with a 95 %
# interval: **holds** (the interval lies above 0), **does not hold** (below 0) or
# **inconclusive** (it contains 0, or the runs measure a training budget). Only certified MI values (below $\log N$ and below every known upper bound; see
# [Figure 1](fig1_estimators.ipynb)) or exact bounds decide a verdict: a claim that only
# uncertified values could decide is "not measurable". Small profiles run far fewer steps and
# seeds than the paper: their verdicts describe those runs, not the paper's setting.

# %% tags=["parameters"]
# Parameters (papermill overrides them; the defaults are the "tiny" smoke size).
profile = "tiny"
results_dir = "results/tiny"
paper_results_dir = None
paper_profile = "paper"
data_dir = None

# %% tags=["hide-input"]
from ibcore.report.notebooks import check_parameters

check_parameters(globals(), "claims")

from IPython.display import Markdown, display
from myst_nb import glue

from ibcore.core.results import project_path
from ibcore.experiments import infoplane
from ibcore.report import claims

out_dir = project_path(results_dir)
# exact bounds of I(X;L+eps) of runs whose weights are stored (Figure 3): computed once, stored
infoplane.ensure_model_bounds(out_dir, "fig3", data_dir)
rows = claims.claims_for(out_dir, profile)
sources = [profile]
paper_dir = project_path(paper_results_dir) if paper_results_dir else None
if paper_dir and paper_dir != out_dir and paper_dir.is_dir():
    rows += claims.claims_for(paper_dir, paper_profile, f"{paper_profile} (stored)")
    sources.append(f"{paper_profile} (stored)")
table = claims.claims_table(rows)

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
counts = {s: claims.verdict_counts(table[table.source == s]) for s in sources}
display(
    Markdown(
        "; ".join(
            f"Profile **`{s}`**: {c[claims.HOLDS]} row(s) hold, {c[claims.FAILS]} do not, "
            f"{c[claims.INCONCLUSIVE]} inconclusive, "
            f"{c[claims.NOT_MEASURABLE]} not measurable from certified values, "
            f"{c[claims.NOT_MEASURED]} not measured"
            for s, c in counts.items()
        )
        + "."
    )
)
for s, c in counts.items():
    key = s.split()[0]
    glue(f"claims_{key}_holds", c[claims.HOLDS], display=False)
    glue(f"claims_{key}_fails", c[claims.FAILS], display=False)
    glue(f"claims_{key}_inconclusive", c[claims.INCONCLUSIVE], display=False)
    glue(f"claims_{key}_not_measurable", c[claims.NOT_MEASURABLE], display=False)

# %% mystnb={"markdown_format": "myst"} tags=["remove-input"]
display(Markdown(claims.markdown_table(table)))

# %% [markdown]
# ## How each verdict is computed
#
# - **Figure 1, unbounded growth**: no finite sample can show infinity, and a value above
#   $\log N$ cannot be certified, so the value at $\sigma^2 = 0$ judges nothing. Over the
#   $\sigma^2 > 0$ where every seed of both estimators is certified, AA-MINE's least-squares
#   slope against $\log(1/\sigma^2)$ must be positive and at least twice MINE's; fewer than two
#   such $\sigma^2$: not measurable. The slope of the exact value (Monte Carlo, $X$ uniform over
#   the held-out samples) is shown beside them. **Monotone decrease**: AA-MINE's mean does not
#   increase along its certified $\sigma^2 > 0$.
# - **Table 1**: per data set, the paired difference of test accuracy between the full-IB row and
#   the other row over the seeds both share, with its 95 % $t$ interval: holds when the interval
#   lies above 0, does not hold when below, inconclusive when it contains 0. First for the runs
#   with the paper's penalty (`aamine` at its validation-chosen $\beta$, from the
#   [compression study](compression.ipynb); a cell whose runs are not stored yet is "not measured"
#   with the note "pending"), then for our earlier runs with the tied critic (only the profile's
#   Table 1 configurations, not the β-sweep runs stored beside them). A cell whose rows' mean
#   train accuracies lie more than 10 points apart (CIFAR-10) is inconclusive whatever its
#   interval: it measures a training budget, and the runs to convergence were not run.
# - **β sweep**: each $\beta > 0$ against $\beta = 0$, paired as above. The claim holds when some
#   $\beta$'s interval lies above 0, does not hold when every interval lies below 0, and is
#   inconclusive otherwise; the intervals are not corrected for the number of $\beta$ compared,
#   which makes "holds" easier to reach by chance.
# - **Figure 3**: the largest $\beta$ gives a lower value than the smallest on every measure of
#   the Figure 3 page (AA-MINE's $I(X;L_1+\varepsilon)$, the effective number of points at the noise
#   scale and at a resolution relative to the layer's spread). Read from the summary that page
#   stores beside the records. $I(X;L_1+\varepsilon)$ is decided by the exact bounds of the two
#   runs' first-layer outputs (their weights are stored; `model_bounds.json` beside the records)
#   when they do not overlap, else only when both estimates are below $\log N$; a measure that is
#   not lower makes the row fail, uncertified ones make it not measurable.
# - **Information plane**: IB, the largest $\beta$ of the sweep ends each layer's training with a
#   lower $I(X;L_i+\varepsilon)$ than the smallest, in every layer; cross-entropy, the estimate falls
#   by more than 10 % after its peak in every layer. A layer decides only when the exact bounds
#   of its layer outputs (stored by runs made since they were added) settle the comparison, or
#   else when the estimates compared are certified (for cross-entropy: every checkpoint of the
#   layer); a deciding layer that disagrees makes the row fail, and a row with undecided layers
#   is otherwise not measurable.

# %% tags=["remove-cell"]
# Findings at a glance, glued into the book's intro: the verdicts of the paper-size records where
# this build has them (else of this profile), as a small HTML table and counts.
from ibcore.report import pages as report

glance_source = sources[-1]
glance = table[table.source == glance_source]
glance_counts = claims.verdict_counts(glance)
report.glue_html("claims_glance_source", f"<code>{glance_source}</code>")
for name, verdict in (
    ("holds", claims.HOLDS),
    ("fails", claims.FAILS),
    ("unmeasured", claims.NOT_MEASURED),
    ("unmeasurable", claims.NOT_MEASURABLE),
    ("inconclusive", claims.INCONCLUSIVE),
):
    report.glue_html(f"claims_glance_{name}", str(glance_counts[verdict]))
report.glue_html(
    "claims_glance",
    report.html_table(glance, {"claim": "claim of the paper", "ours": "our numbers", "verdict": "verdict"}),
)
