"""Table 1 with the paper's penalty (issue 9 item 6): cross-entropy, I(Y;L_i) only (beta = 0) and
layer-by-layer IB with each penalty on I(X;L_i+eps) at its validation-chosen beta, per cell, read
from the records of the compression study (:mod:`ibcore.experiments.compression`).

MNIST 1 % comes from the study's confirmation stage, MNIST 100 % from its transfer stage. The
differences to beta = 0 are those of :func:`compression.paired_rows` / :func:`transfer_rows`
(paired by seed, 95 % t interval); the difference to cross-entropy is paired the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ibcore.core.config import TrainConfig
from ibcore.core.results import config_id
from ibcore.experiments import compression

#: The paper's penalty: its row is Table 1's full-IB row; the other arms are extra rows.
PAPER_PENALTY = "aamine"
PENDING = "pending (runs not stored)"


def _runs(configs: list[TrainConfig], stored: dict[str, dict]) -> dict[int, dict]:
    """seed -> complete record of each config that has one."""
    out = {}
    for c in configs:
        r = stored.get(config_id(c.to_dict()))
        if r is not None and r.get("status", "complete") == "complete":
            out[c.seed] = r
    return out


def _accuracy(runs: dict[int, dict], key: str) -> list[float]:
    return [100 * runs[s]["metrics"][key] for s in sorted(runs) if runs[s]["metrics"].get(key) is not None]


def _spread(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _row(
    name: str, kind: str, runs: dict[int, dict], seeds: list[int], status: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One table row: test and train accuracy (%) over the stored seeds; ``status`` is complete,
    partial or :data:`PENDING` unless given."""
    test, train = _accuracy(runs, "test_accuracy"), _accuracy(runs, "train_accuracy")
    mean, std = _spread(test)
    if status is None:
        status = PENDING if not runs else ("complete" if len(runs) == len(seeds) else "partial")
    return {
        "row": name,
        "kind": kind,
        "n": len(runs),
        "seeds_declared": len(seeds),
        "status": status,
        "mean": mean,
        "std": std,
        "train_mean": _spread(train)[0] if len(train) == len(runs) else math.nan,
        "runs": runs,
        **extra,
    }


def _vs(row: dict[str, Any] | None) -> dict[str, Any]:
    """The paired difference of a :func:`compression.paired_rows` row in the keys of
    :mod:`ibcore.core.stats` (a missing or empty row: n = 0, inconclusive)."""
    if not row or not row.get("n"):
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "verdict": "inconclusive"}
    return {k: row[src] for k, src in (("mean", "mean"), ("ci_low", "low"), ("ci_high", "high"))} | {
        "n": row["n"],
        "verdict": row["verdict"],
    }


def _cell_rows(
    cell: dict[str, Any], paired: list[dict], arms: dict[str, dict], records: list[dict]
) -> list[dict[str, Any]]:
    """Rows of one cell: cross-entropy, beta = 0, then each arm of ``paired`` (the paper's first)."""
    from ibcore.core.stats import paired_records

    stored = {config_id(r["config"]): r for r in records}
    seeds = list(cell["seeds"])
    ce = _runs([compression.ce_config(cell, s) for s in seeds], stored)
    iy = _runs([compression.baseline_config(cell, s) for s in seeds], stored)
    by_name = {r["penalty"]: r for r in paired}
    rows = [
        _row("cross-entropy", "ce", ce, seeds, vs_iy=_vs(by_name.get("cross-entropy"))),
        _row("I(Y;L) only", "iy", iy, seeds),
    ]
    names = sorted((n for n in by_name if n != "cross-entropy"), key=lambda n: n != PAPER_PENALTY)
    for name in names:
        p, arm = by_name[name], arms.get(name)
        if p.get("beta") is None or arm is None:  # every setting diverged
            rows.append(_row(name, "ib", {}, seeds, status=p.get("reason", PENDING), penalty=name))
            continue
        noise = {"sigma": p["sigma"], "sigma_mode": p["sigma_mode"]}
        runs = _runs([compression.penalty_config(cell, arm, p["beta"], noise, s) for s in seeds], stored)
        shared = sorted(runs.keys() & ce.keys())
        vs_ce = paired_records([runs[s] for s in shared], [ce[s] for s in shared])
        rows.append(
            _row(
                name,
                "ib",
                runs,
                seeds,
                penalty=arm["penalty"],
                paper_penalty=name == PAPER_PENALTY,
                beta=p["beta"],
                sigma=p["sigma"],
                sigma_mode=p["sigma_mode"],
                lr=p["lr"],
                critic_steps=p["critic_steps"],
                baseline_lr=p["lr"],
                vs_iy=_vs(p),
                vs_ce=vs_ce,
            )
        )
    return rows


def paper_penalty_table(params: dict[str, Any], records: Iterable[dict]) -> list[dict[str, Any]]:
    """Cells of "Table 1 with the paper's penalty", in the paper's order: one dict per cell with
    ``dataset``, ``fraction``, ``stage`` ("confirmation" or "transfer"), ``steps``, ``ce_steps``,
    ``val_size``, ``seeds``, ``chosen_on`` (the cell whose validation chose the transfer stage's
    settings) and ``rows``. Each row: ``row`` (name), ``kind`` (ce / iy / ib),
    ``n`` stored seeds of ``seeds_declared``, ``status`` (complete / partial / :data:`PENDING`),
    ``mean`` and ``std`` of test accuracy (%), ``train_mean`` (%), and for the IB rows the chosen
    ``beta``, noise, ``lr``, ``vs_iy`` (paired difference to beta = 0 at the same layer learning
    rate, from :func:`compression.paired_rows`) and ``vs_ce`` (paired difference to cross-entropy);
    the cross-entropy row has ``vs_iy`` too. ``params`` is the profile's ``compression`` entry."""
    records = list(records)
    out = []
    stages = [("confirmation", params, compression.paired_rows(params, records), compression.arms(params))]
    cell = compression.transfer_params(params)
    if cell is not None:
        carried = {name: choice["arm"] for name, choice in compression.transfer_arms(params, records).items()}
        stages.append(("transfer", cell, compression.transfer_rows(params, records), carried))
    for stage, cell_params, paired, arms in stages:
        out.append(
            {
                "dataset": cell_params["dataset"],
                "fraction": cell_params.get("fraction", 1.0),
                "stage": stage,
                "steps": cell_params.get("steps"),
                "ce_steps": cell_params.get("ce_steps"),
                "val_size": cell_params.get("val_size"),
                "selection_seeds": list(params.get("selection_seeds") or []),
                "seeds": list(cell_params["seeds"]),
                "rows": _cell_rows(cell_params, paired, arms, records),
                "chosen_on": None
                if stage == "confirmation"
                else (params["dataset"], params.get("fraction", 1.0)),
            }
        )
    return out


def differences(cell: dict[str, Any], table_cells: Iterable[dict] = ()) -> str:
    """How the runs of ``cell`` (from :func:`paper_penalty_table`) differ from the paper's Table 1
    and from our earlier Table 1 runs (``table_cells``: the ``cells`` of the profile's table1
    entry), in plain words: steps, the validation split, how beta was chosen, seeds."""
    from ibcore.core.data import SPECS
    from ibcore.experiments.sweep import cell_name

    earlier = {(c["dataset"], c.get("fraction", 1.0)): c.get("steps") for c in table_cells}
    steps = f"{cell['steps']} IB steps per layer"
    table_steps = earlier.get((cell["dataset"], cell["fraction"]))
    if table_steps and table_steps != cell["steps"]:
        steps += f" (our earlier Table 1 runs: {table_steps})"
    parts = [
        f"{steps}, cross-entropy {cell['ce_steps']} steps (the paper's run lengths are in its "
        "supplementary material, which is not available)"
    ]
    if cell["fraction"] < 1:
        parts.append(
            f"a validation split of {cell['val_size']} further training images from outside the "
            f"{100 * cell['fraction']:g} % subset (the subset itself is as in Table 1)"
        )
        parts.append(
            f"each penalty's β and noise chosen on validation accuracy over "
            f"{len(cell['selection_seeds'])} selection seed(s), test accuracy read once"
        )
    else:
        n_train = SPECS.get(cell["dataset"], {}).get("n_train")
        kept = f", trained on the other {n_train - cell['val_size']}" if n_train else ""
        parts.append(f"{cell['val_size']} training images held out for validation{kept}")
        source = cell_name(*cell["chosen_on"]) if cell.get("chosen_on") else "the first cell's"
        parts.append(f"β and noise carried over from the {source} choice, not chosen again on this cell")
    parts.append(f"{len(cell['seeds'])} paired seeds")
    return "; ".join(parts) + "."


def verdict_markdown(cells: list[dict[str, Any]]) -> str:
    """A MyST line per cell of :func:`paper_penalty_table`: the paper's penalty against beta = 0
    and against cross-entropy (paired difference, 95 % interval, verdict), and how many of the
    other penalties hold, do not hold or are inconclusive against beta = 0."""
    from ibcore.experiments.comparisons import interval_text
    from ibcore.experiments.sweep import cell_name

    lines = []
    for cell in cells:
        name = cell_name(cell["dataset"], cell["fraction"])
        paper = [r for r in cell["rows"] if r.get("paper_penalty")]
        if not paper:
            lines.append(f"- **{name}**: the paper's penalty has no chosen setting yet ({PENDING}).")
            continue
        row = paper[0]
        if row["n"] == 0:
            lines.append(f"- **{name}**: the paper's penalty ({row['row']}, β = {row['beta']:g}): {PENDING}.")
            continue
        text = (
            f"- **{name}**, the paper's penalty ({row['row']}, β = {row['beta']:g} chosen on validation): "
            f"against β = 0 {interval_text(row['vs_iy'])}, **{row['vs_iy']['verdict']}**; against "
            f"cross-entropy {interval_text(row['vs_ce'])}, **{row['vs_ce']['verdict']}**."
        )
        others = [r for r in cell["rows"] if r["kind"] == "ib" and not r.get("paper_penalty") and r["n"]]
        if others:
            counts = {
                v: [r["row"] for r in others if r["vs_iy"]["verdict"] == v]
                for v in ("holds", "does not hold", "inconclusive")
            }
            text += " Other penalties against β = 0: " + "; ".join(
                f"{v}: {', '.join(names)}" for v, names in counts.items() if names
            )
            text += "."
        lines.append(text)
    return "\n".join(lines)
