"""The claims page's verdicts from two trainings of the same runs, side by side.

``benchmarks/rerun_drift.py`` compares two results folders run by run; this script compares what
the book concludes from each: every claim row of :func:`ibcore.report.claims.claims_for` (our
numbers and the verdict: holds, does not hold, inconclusive, not measurable) computed from the
stored records and from the same runs trained again, and the compression study's answers (each
penalty at its validation choice against beta = 0, MNIST 1 % and stage 3). Both folders must
hold every run of the profile (and the exact bounds of Figure 3's runs, which the claims page
computes once). Run from the repository root:

    python3 benchmarks/rerun_claims.py OLD_RESULTS_DIR NEW_RESULTS_DIR [--profile paper] \
        [--out results/bench/rerun_claims.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ibcore.bench.machine import _utc_now  # noqa: E402
from ibcore.core.results import atomic_write_bytes  # noqa: E402
from ibcore.report import claims  # noqa: E402

ANSWER_KEYS = ("penalty", "beta", "val_accuracy", "n", "mean", "low", "high", "verdict")


def compression_answers(results_dir: Path, profile: str) -> dict[str, list[dict]]:
    """The compression study's answers (MNIST 1 %: each penalty at its validation choice against
    beta = 0; MNIST 100 %: stage 3) from the records under ``results_dir``."""
    from ibcore.core.results import load_records
    from ibcore.experiments import compression
    from ibcore.orchestration.jobs import stem_params

    params = stem_params(profile)["compression"]
    records = load_records(results_dir, compression.KIND, statuses=("complete", "diverged"))

    def keep(rows: list[dict]) -> list[dict]:
        return [{k: r.get(k) for k in ANSWER_KEYS} for r in rows]

    return {
        "stage1": keep(compression.paired_rows(params, records)),
        "stage3": keep(compression.transfer_rows(params, records)),
    }


def compare(old_dir: Path, new_dir: Path, profile: str) -> dict:
    def by_row(results_dir: Path) -> dict[tuple[str, int], dict]:
        """Claim rows by (claim key, position among the rows of that key): a claim can have a
        row per data set or per kind of run."""
        seen: dict[str, int] = {}
        out = {}
        for r in claims.claims_for(results_dir, profile):
            seen[r["key"]] = seen.get(r["key"], -1) + 1
            out[(r["key"], seen[r["key"]])] = r
        return out

    old, new = by_row(old_dir), by_row(new_dir)
    text = {key: claim for key, _, claim in claims.CLAIMS}
    rows = [
        {
            "key": key,
            "row": k,
            "claim": text.get(key, key),
            "old_ours": old[(key, k)]["ours"] if (key, k) in old else None,
            "new_ours": new[(key, k)]["ours"] if (key, k) in new else None,
            "old_verdict": old[(key, k)]["verdict"] if (key, k) in old else None,
            "new_verdict": new[(key, k)]["verdict"] if (key, k) in new else None,
        }
        for key, k in dict.fromkeys([*old, *new])
    ]
    for row in rows:
        row["same_verdict"] = row["old_verdict"] == row["new_verdict"]
    return {
        "kind": "bench_rerun_claims",
        "date": _utc_now(),
        "profile": profile,
        "old": str(old_dir),
        "new": str(new_dir),
        "rows": rows,
        "changed": sum(not r["same_verdict"] for r in rows),
        "compression": {
            "old": compression_answers(old_dir, profile),
            "new": compression_answers(new_dir, profile),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--profile", default="paper")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "rerun_claims.json")
    args = p.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"error: {folder} is not a results folder", file=sys.stderr)
            return 2
    record = compare(args.old, args.new, args.profile)
    atomic_write_bytes(args.out, (json.dumps(record, indent=1) + "\n").encode())
    for row in record["rows"]:
        mark = "  " if row["same_verdict"] else "**"
        print(f"{mark} {row['key']}[{row['row']}]: {row['old_verdict']} -> {row['new_verdict']}")
        print(f"     old: {row['old_ours']}\n     new: {row['new_ours']}")
    for stage in ("stage1", "stage3"):
        for old, new in zip(
            record["compression"]["old"][stage], record["compression"]["new"][stage], strict=False
        ):
            print(f"compression {stage} {old['penalty']}: {old['verdict']} -> {new['verdict']}")
    print(f"{record['changed']} of {len(record['rows'])} verdicts changed; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
