"""Early stopping in Figure 1 (issue 15 item 2): the same estimates with and without it, paired
by (panel, estimator, sigma^2, seed), and whether it changes them beyond the seed spread.

Early stopping (:class:`ibcore.core.estimators.NeuralEstimator`, ``patience``) evaluates the DV
bound (Eq. 6) on half of the held-out samples every ``eval_every`` steps, stops after
``patience`` evaluations without a gain of ``min_delta`` (not before ``min_steps``) and reports
the best critic's bound on the other half. :func:`measure_early_stopping` runs both variants
through :func:`ibcore.experiments.figure1_run.run_figure1` (stored records are read back) and
writes the comparison to a JSON file that the page only reads (:func:`load_early_stopping`).

Judged at sigma^2 > 0 only: at sigma^2 = 0 the true MI is infinite and AA-MINE's value is set
by its critic's scale floor, so no change there means anything.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ibcore.experiments.figure1_configs import ESTIMATOR_LABELS
from ibcore.experiments.figure1_run import resolve_results_dir, run_figure1

#: Bumped when the comparison's fields or rule change.
EARLY_VERSION = 2
EARLY_FILE = "figure1_early_stopping.json"
RULE = (
    "changed beyond seed spread: |mean with - mean without| > the standard deviation over seeds "
    "without early stopping, at any sigma^2 > 0"
)


def _key(record: dict[str, Any]) -> tuple:
    c = record["config"]
    return c["panel"], c["estimator"], float(c["sigma2"]), c["seed"]


def _mi(record: dict[str, Any]) -> float:
    mi = record["metrics"].get("mi")
    return math.nan if mi is None else float(mi)


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def comparison_rows(full: Iterable[dict[str, Any]], early: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (panel, estimator, sigma^2) present in both: the mean and std over the paired
    seeds of the estimate without (``full_*``) and with (``early_*``) early stopping, their
    difference, the seed spread (the std without), ``within`` (|difference| <= spread), the step
    budget, the mean stopping step, and the mean estimate time of each (seconds)."""
    by_key = {_key(r): r for r in full}
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for r in early:
        k = _key(r)
        if k in by_key:
            groups.setdefault(k[:3], []).append((by_key[k], r))
    rows = []
    for (panel, est, s2), pairs in sorted(groups.items()):
        full_mean, full_std = _mean_std([_mi(a) for a, _ in pairs])
        early_mean, early_std = _mean_std([_mi(b) for _, b in pairs])
        spread = full_std
        diff = early_mean - full_mean
        true_mi = pairs[0][0]["metrics"].get("true_mi")
        rows.append(
            {
                "panel": panel,
                "estimator": est,
                "sigma2": s2,
                "seeds": len(pairs),
                "full_mean": full_mean,
                "full_std": full_std,
                "early_mean": early_mean,
                "early_std": early_std,
                "diff": diff,
                "spread": spread,
                "within": bool(math.isfinite(spread) and abs(diff) <= spread),
                "true_mi": None if true_mi is None else float(true_mi),
                "steps": pairs[0][0]["config"]["steps"],
                "stop_step": statistics.fmean(b["metrics"]["stop_step"] for _, b in pairs),
                "full_s": statistics.fmean(a["timings"]["estimate_s"] for a, _ in pairs),
                "early_s": statistics.fmean(b["timings"]["estimate_s"] for _, b in pairs),
            }
        )
    return rows


def verdicts(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per "panel/estimator", over sigma^2 > 0: ``unchanged`` (every sigma^2 within the seed
    spread, :data:`RULE`), the sigma^2 where it changed, the fraction of steps and of estimate
    time saved."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["sigma2"] <= 0:
            continue
        v = out.setdefault(
            f"{r['panel']}/{r['estimator']}",
            {"panel": r["panel"], "estimator": r["estimator"], "changed_at": [], "steps": 0.0, "stop": 0.0},
        )
        v.setdefault("full_s", 0.0)
        v.setdefault("early_s", 0.0)
        if not r["within"]:
            v["changed_at"].append(r["sigma2"])
        v["steps"] += r["steps"]
        v["stop"] += r["stop_step"]
        v["full_s"] += r["full_s"]
        v["early_s"] += r["early_s"]
    for v in out.values():
        v["unchanged"] = not v["changed_at"]
        v["steps_saved"] = 1 - v.pop("stop") / v.pop("steps")
        v["time_saved"] = 1 - v["early_s"] / v["full_s"] if v["full_s"] > 0 else math.nan
    return out


def measure_early_stopping(
    results_dir: str | os.PathLike,
    params: dict[str, Any],
    settings: dict[str, Any],
    out: str | os.PathLike,
    *,
    device: str = "cpu",
    label: str = "",
) -> dict[str, Any]:
    """Run (or read back) Figure 1 with ``params`` without and with early stopping ``settings``
    for every estimator of the run, and add the comparison to ``out`` (:func:`store_comparison`)."""
    full = run_figure1(results_dir, device=device, **params)
    estimators = sorted({r["config"]["estimator"] for r in full})
    stopping = {est: dict(settings) for est in estimators}
    early = run_figure1(results_dir, device=device, **params, early_stopping=stopping)
    rows = comparison_rows(full, early)
    data = {
        "version": EARLY_VERSION,
        "label": label,
        "description": "Figure 1 with and without early stopping (ibcore.experiments.figure1_early).",
        "rule": RULE,
        "params": params,
        "settings": settings,
        "records": {"without": len(full), "with": len(early)},
        "rows": rows,
        "verdicts": verdicts(rows),
    }
    store_comparison(out, data)
    return data


def store_comparison(out: str | os.PathLike, data: dict[str, Any]) -> None:
    """Add ``data`` to the list of comparisons in ``out`` (JSON), replacing one of the same label."""
    path = Path(out)
    entries = []
    if path.is_file():
        old = json.loads(path.read_text())
        entries = [d for d in (old if isinstance(old, list) else [old]) if d.get("label") != data["label"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([*entries, data], indent=1, sort_keys=True, default=float)
    path.write_text(text.replace("NaN", "null") + "\n")


def load_early_stopping(results_dir: str | os.PathLike, name: str = EARLY_FILE) -> list[dict[str, Any]]:
    """The stored comparisons in ``results_dir/name`` (a list; [] when absent or of another
    version)."""
    path = resolve_results_dir(results_dir) / name
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    entries = data if isinstance(data, list) else [data]
    return [d for d in entries if d.get("version") == EARLY_VERSION]


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if math.isfinite(x) else "n/a"


def early_stopping_markdown(data: dict[str, Any]) -> str:
    """A Markdown summary of one stored comparison, its numbers only."""
    s, p = data["settings"], data["params"]
    lines = [
        f"**{data.get('label') or 'Measured'}**: {p.get('steps')} steps at most, "
        f"seeds {p.get('seeds')}, σ² = {p.get('sigma2_grid')}; early stopping with patience "
        f"{s['patience']}, an evaluation every {s.get('eval_every', 100)} steps, at least "
        f"{s.get('min_steps', 200)} steps, min. gain {s.get('min_delta', 0.005)} nats "
        f"({data['records']['with']} estimates with, {data['records']['without']} without). "
        f"Rule: {data['rule']}. Wall times are the records' own, on a shared CPU whose load varied "
        "between the runs: the steps saved are the firmer measure.",
        "",
    ]
    for v in data["verdicts"].values():
        label = ESTIMATOR_LABELS.get(v["estimator"], v["estimator"])
        changed = (
            "no change beyond seed spread"
            if v["unchanged"]
            else "changed beyond seed spread at σ² = " + ", ".join(f"{x:g}" for x in v["changed_at"])
        )
        lines.append(
            f"- panel {v['panel']}, {label}: {changed}; steps saved {_pct(v['steps_saved'])}, "
            f"estimate wall time saved {_pct(v['time_saved'])}."
        )
    return "\n".join(lines)


def profile_choice_markdown(
    early_stopping: dict[str, Any] | None, steps: int, comparisons: list[dict[str, Any]]
) -> str:
    """What this profile does (``early_stopping`` of its Figure 1) and the measured reason."""
    changed = sorted(
        {
            f"{ESTIMATOR_LABELS.get(v['estimator'], v['estimator'])} (panel {v['panel']})"
            for d in comparisons
            for v in d["verdicts"].values()
            if not v["unchanged"]
        }
    )
    unchanged = sorted(
        {
            f"{ESTIMATOR_LABELS.get(v['estimator'], v['estimator'])} (panel {v['panel']})"
            for d in comparisons
            for v in d["verdicts"].values()
            if v["unchanged"]
        }
        - set(changed)
    )
    if early_stopping:
        on = ", ".join(ESTIMATOR_LABELS.get(e, e) for e in early_stopping)
        text = f"**This profile** stops early for {on} (at most {steps} steps)"
    else:
        text = f"**This profile** runs every estimate to its full budget of {steps} steps"
    if not comparisons:
        return text + "; the effect of early stopping was not measured."
    if not early_stopping:
        text += (
            " (an early-stopped estimate is a new run, on half the held-out samples: the records "
            "stored with the full budget are read back as they are)"
        )
    text += (
        ". Measured: early stopping changed the estimate beyond the seed spread for "
        + (", ".join(changed) or "none")
        + (f"; not for {', '.join(unchanged)}" if unchanged else "")
        + "."
    )
    return text


def main(argv: list[str] | None = None) -> None:
    """``python3 -m ibcore.experiments.figure1_early PROFILE OUT SETTINGS LABEL [key=value ...]``:
    the comparison on the profile's Figure 1 (its results_dir; ``key=value`` (YAML values)
    override its parameters), early stopping SETTINGS as JSON, written to OUT."""
    import inspect

    import yaml

    from ibcore.core.results import project_path
    from ibcore.experiments.figure1_configs import figure1_configs

    args = list(sys.argv[1:] if argv is None else argv)
    profile, out, settings, label = args[0], args[1], json.loads(args[2]), args[3]
    section = yaml.safe_load(project_path(f"profiles/{profile}.yml").read_text())["fig1_estimators"]
    for item in args[4:]:
        key, value = item.split("=", 1)
        section[key] = yaml.safe_load(value)
    names = set(inspect.signature(figure1_configs).parameters) - {"early_stopping"}
    params = {k: v for k, v in section.items() if k in names}
    data = measure_early_stopping(section["results_dir"], params, settings, out, label=label)
    print(early_stopping_markdown(data))


if __name__ == "__main__":
    main()
