"""The verdicts of the claims page and the row every claim function returns."""

from __future__ import annotations

import math
from typing import Any

HOLDS = "holds"
FAILS = "does not hold"
#: A paired comparison whose 95 % interval contains 0, or whose runs measure something else (a
#: training budget): no verdict either way (issue 9).
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured in this profile"
#: Records exist, but only uncertified MI values (above log N or above an upper bound) could
#: decide the claim (issue 10): no verdict.
NOT_MEASURABLE = "not measurable"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED)

#: The verdicts of :mod:`ibcore.core.stats` as claim verdicts.
FROM_STATS = {"holds": HOLDS, "does not hold": FAILS, "inconclusive": INCONCLUSIVE}


def claim_row(
    key: str, source: str, ours: str = "", verdict: str = NOT_MEASURED, note: str = ""
) -> dict[str, Any]:
    """One row of the claims table: claim ``key``, the profile it was computed from, our numbers,
    the verdict (one of :data:`VERDICTS`) and a note on how it was decided."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; choose from {VERDICTS}")
    return {"key": key, "source": source, "ours": ours, "verdict": verdict, "note": note}


def fmt(x: float | None) -> str:
    """A number to 3 significant figures ('n/a' for None or NaN, '∞' for infinity)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞"
    return f"{x:.3g}"
