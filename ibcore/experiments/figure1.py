"""Figure 1: MINE vs architecture-aware MINE (AA-MINE) on I(X; L + eps) as the noise shrinks.

Two panels, each an estimate of I(X; L + eps), eps ~ N(0, sigma^2 I), on a grid of sigma^2:

- panel "a" (the paper's Fig. 1): L is the output of a 3-layer MLP with random (default
  PyTorch, seeded) weights on MNIST training images. The true MI is unknown; it is infinite at
  sigma^2 = 0 (Sec. 2). As a reference each record also holds the Gaussian (maximum-entropy)
  upper bound 1/2 log det(I + Sigma_L / sigma^2) computed from the clean features, which bounds
  the true MI from above for every sigma^2 > 0.
- panel "b" (a check with known truth): L = W X on X ~ N(0, I); the true MI is Eq. 5
  (:func:`ibcore.core.analytic.linear_gaussian_mi`).

Every (panel, estimator, sigma^2, seed) is one record of kind ``"figure1"`` in the shared
results format (:func:`ibcore.core.results.run_all`): finished records are read back, not rerun.
This module runs and tabulates; plotting lives in the notebook ``nbs/fig1_estimators.ipynb``.

Issue 10: panel a's exact references (X uniform over the held-out rows of each estimate:
Bhattacharyya / pairwise-KL bounds and a Monte Carlo value) are computed once from the seed of
the random net and stored in ``figure1_reference.json`` beside the records
(:func:`ensure_references`); every estimate carries a status (:func:`figure1_frame`), and the
summary judges trends from certified values only, never from sigma^2 = 0.

The code lives in modules with one concern each, re-exported here: the parameters
(:mod:`~ibcore.experiments.figure1_configs`), the measured layers and running
(:mod:`~ibcore.experiments.figure1_run`), the exact references (:mod:`~ibcore.experiments.figure1_reference`),
the tables (:mod:`~ibcore.experiments.figure1_tables`) and the summary and verdict
(:mod:`~ibcore.experiments.figure1_verdict`).
"""

from __future__ import annotations

from ibcore.experiments.figure1_configs import (  # noqa: F401
    ALL_ESTIMATORS,
    EARLY_STOPPING_DEFAULTS,
    ESTIMATOR_LABELS,
    ESTIMATORS,
    KIND,
    MNIST_PIXELS,
    PANELS,
    PENALTY_HIDDEN,
    TRAINING_CRITICS,
    VERSION,
    figure1_configs,
)
from ibcore.experiments.figure1_reference import (  # noqa: F401
    REFERENCE_FIELDS,
    REFERENCE_FILE,
    REFERENCE_MC_DRAWS,
    REFERENCE_VERSION,
    compute_references,
    ensure_references,
    exact_reference,
    heldout_indices,
    load_references,
    reference_key,
)
from ibcore.experiments.figure1_run import (  # noqa: F401
    PROJECT_MARKERS,
    TiedAAMINE,
    TiedInputCritic,
    gaussian_upper_bound,
    gaussian_weight,
    json_number,
    make_estimator,
    panel_a_net,
    panel_b_problem,
    record_runner,
    resolve_results_dir,
    run_figure1,
)
from ibcore.experiments.figure1_tables import (  # noqa: F401
    STATUS_ORDER,
    TABLE_COLUMNS,
    figure1_frame,
    figure1_table,
    log_slope,
    record_status,
    truth_excess,
)
from ibcore.experiments.figure1_verdict import (  # noqa: F401
    figure1_display_table,
    figure1_summary,
    figure1_verdict,
)
