"""How far the same runs land when they are trained again: two results folders compared run by run.

A run's record file is named by its configuration's hash, so a file present in both folders is the
same run (same data, seed and parameters) trained twice. Between the two trainings something
below the experiment changed: here, the code that trained the stored records against a fresh
clone that trained them again from scratch (the statistics networks' ELU computed in float64,
within 1 ulp of torch's float32 ELU, is the one change to the arithmetic at 9c59c0e). The script
reports, per kind of run, how many records came out bit-for-bit equal and how far the test
accuracies moved: the scale against which a difference of the grouped runs (issue 14) or between
two seeds' worth of paired comparison must be read. Run from the repository root:

    python3 benchmarks/rerun_drift.py OLD_RESULTS_DIR NEW_RESULTS_DIR [--out results/bench/rerun_drift.json]

e.g. ``OLD_RESULTS_DIR`` a worktree of the commit before the records were replaced, at
``results/paper``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ibcore.bench.machine import _utc_now  # noqa: E402
from ibcore.core.results import atomic_write_bytes  # noqa: E402

RUN_KINDS = ("table1", "compression", "info_plane", "fig3", "figure1")


def _group(record: dict[str, Any]) -> str:
    c = record.get("config", {})
    if record["kind"] == "figure1":
        return f"figure1 {c.get('estimator')}"
    parts = [record["kind"], c.get("dataset", ""), c.get("method", "")]
    if c.get("method") == "ib":
        parts.append("beta>0" if c.get("beta", 0) > 0 else "beta=0")
        if c.get("beta", 0) > 0:
            parts.append(c.get("penalty", "tied"))
    return " ".join(str(p) for p in parts if p)


def _accuracy(record: dict[str, Any]) -> float | None:
    value = (record.get("metrics") or {}).get("test_accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def compare(old_dir: Path, new_dir: Path) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for new_path in sorted(new_dir.glob("*/*.json")):
        if new_path.parent.name not in RUN_KINDS or new_path.name.count(".") > 1:
            continue
        old_path = old_dir / new_path.parent.name / new_path.name
        if not old_path.is_file():
            continue
        new, old = json.loads(new_path.read_text()), json.loads(old_path.read_text())
        if new.get("config") != old.get("config"):
            raise ValueError(f"{new_path.name}: the two records hold different configurations")
        g = groups.setdefault(
            _group(new), {"runs": 0, "identical_metrics": 0, "accuracy_moves": [], "status_changes": 0}
        )
        g["runs"] += 1
        g["identical_metrics"] += new.get("metrics") == old.get("metrics")
        g["status_changes"] += new.get("status") != old.get("status")
        a, b = _accuracy(old), _accuracy(new)
        if a is not None and b is not None:
            g["accuracy_moves"].append(100 * (b - a))
    rows = []
    for name, g in sorted(groups.items()):
        moves = [abs(m) for m in g["accuracy_moves"]]
        rows.append(
            {
                "runs": g["runs"],
                "group": name,
                "identical_metrics": g["identical_metrics"],
                "status_changes": g["status_changes"],
                "accuracy_pairs": len(moves),
                "median_abs_move_pts": round(statistics.median(moves), 3) if moves else None,
                "max_abs_move_pts": round(max(moves), 3) if moves else None,
                "mean_move_pts": round(statistics.fmean(g["accuracy_moves"]), 3) if moves else None,
            }
        )
    return {
        "kind": "bench_rerun_drift",
        "date": _utc_now(),
        "old": str(old_dir),
        "new": str(new_dir),
        "groups": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "rerun_drift.json")
    p.add_argument(
        "--note", default="", help="what changed between the two trainings, stored with the record"
    )
    args = p.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"error: {folder} is not a results folder", file=sys.stderr)
            return 2
    record = compare(args.old, args.new)
    record["note"] = args.note
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    for row in record["groups"]:
        print(row)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
