"""How far the same runs land when they are trained again: two results folders compared run by run.

A run's record file is named by its configuration's hash, so a file present in both folders is the
same run (same data, seed and parameters) trained twice. What differs between the two trainings
lies below the experiment: the code version that trained each record (rounding-level changes such
as the statistics networks' ELU computed in float64 on the CPU, within 1 ulp; changes to what
draws from the random streams), threads, load. The script reports, per kind of run, how many
records came out with equal metrics and how far the test accuracies moved, and the ratio of the
runs' own seconds (new over old): the scale against which the difference of a grouped run from
its single run (issue 14) must be read. Run from the repository root:

    python3 benchmarks/rerun_drift.py OLD_RESULTS_DIR NEW_RESULTS_DIR [--out results/bench/rerun_drift.json]
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
from ibcore.bench.projection import record_seconds  # noqa: E402
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
    seconds = {"old": 0.0, "new": 0.0}
    same_file = 0
    for new_path in sorted(new_dir.glob("*/*.json")):
        if new_path.parent.name not in RUN_KINDS or new_path.name.count(".") > 1:
            continue
        old_path = old_dir / new_path.parent.name / new_path.name
        if not old_path.is_file():
            continue
        if new_path.read_bytes() == old_path.read_bytes():  # the same stored record, not trained again
            same_file += 1
            continue
        new, old = json.loads(new_path.read_text()), json.loads(old_path.read_text())
        if new.get("config") != old.get("config"):
            raise ValueError(f"{new_path.name}: the two records hold different configurations")
        g = groups.setdefault(
            _group(new), {"runs": 0, "identical_metrics": 0, "accuracy_moves": [], "status_changes": 0}
        )
        g["runs"] += 1
        s_old, s_new = record_seconds(old), record_seconds(new)
        if s_old is not None and s_new is not None:
            seconds["old"] += s_old
            seconds["new"] += s_new
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
        "skipped_same_file": same_file,
        # the runs' own seconds summed over the runs trained in both folders: the two trainings' loads
        "seconds": {k: round(v, 1) for k, v in seconds.items()}
        | {"new_over_old": round(seconds["new"] / seconds["old"], 3) if seconds["old"] else None},
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
