"""ibcore: estimators, models, data and trainers for the IB layer-by-layer study.

Companion code of *Direct Validation of the Information Bottleneck Principle for Deep Nets*
(Elad, Haviv, Blau, Michaeli; ICCV-W 2019).
"""

from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.estimators import AAMINE, MINE, Estimate, LabelMINE, dv_bound
from ibcore.core.mi import estimate_mi
from ibcore.core.runtime import resolve_device, seed_everything

__all__ = [
    "AAMINE",
    "MINE",
    "Estimate",
    "LabelMINE",
    "dv_bound",
    "estimate_mi",
    "linear_gaussian_mi",
    "resolve_device",
    "seed_everything",
]
__version__ = "0.1.0"
