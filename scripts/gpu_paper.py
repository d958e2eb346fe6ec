#!/usr/bin/env python3
"""Train a profile's runs grouped (``ibcore.core.grouped``) on one device inside a time limit.

Lists the runs the profile's notebooks ask for (``ibcore.orchestration.jobs.stem_plan``: Table 1,
beta sweep, information plane, Figure 3, compression), groups those of one cell (seeds, betas,
sigmas), and trains group after group, cheapest first, writing each run's record under
``<out>/<kind>/`` as its group ends, and ``<out>/gpu_timings.json`` after every group. A run cut by
``--limit-s`` (an alarm inside the process) or killed from outside still leaves every finished
group's records and the timings so far. Runs already stored under ``--out`` are not redone.
Figure 1's estimator runs are not grouped: with ``--figure1`` they run one at a time afterwards.

Usage (the paper profile on one GPU, CUDA graphs on)::

    python3 scripts/gpu_paper.py --profile paper --device cuda --capture --out results/gpu_paper
    python3 scripts/gpu_paper.py --profile tiny --device cpu --out /tmp/tiny_grouped --limit-s 120
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ibcore.core.config import TrainConfig  # noqa: E402
from ibcore.core.grouped import group_configs, run_groups  # noqa: E402
from ibcore.core.results import atomic_write_bytes  # noqa: E402
from ibcore.core.runtime import resolve_device  # noqa: E402

#: Notebooks whose runs are TrainConfigs (grouped here), by stem.
GROUPED_STEMS = ("table1", "beta_sweep", "info_plane", "fig3_tsne", "compression")


class OutOfTime(Exception):
    """Raised by the alarm at ``--limit-s``."""


def _on_alarm(signum: int, frame: object) -> None:
    raise OutOfTime


def cost(config: TrainConfig) -> float:
    """A rough cost of one run (steps x layers, conv-net 8x), to order groups cheapest first."""
    layers = config.max_layers or (
        len(config.channels) + 1 if config.arch == "convnet" else len(config.widths) - 1
    )
    steps = config.steps * (layers if config.method == "ib" else 1)
    return steps * (8.0 if config.arch == "convnet" else 1.0) * (1.2 if config.fraction == 1 else 1.0)


def plan(profile: str, stems: list[str], datasets: list[str] | None) -> list[tuple[str, TrainConfig]]:
    """(kind, config) of every run of the selected notebooks, without repeats."""
    from ibcore.orchestration.jobs import stem_plan

    seen: dict[tuple[str, str], tuple[str, TrainConfig]] = {}
    for jobs in stem_plan(profile, only=stems, root=ROOT).values():
        for job in jobs:
            if job.kind == "figure1" or (datasets and job.dataset not in datasets):
                continue
            seen.setdefault((job.kind, job.key), (job.kind, TrainConfig.from_dict(job.config)))
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="results/gpu_paper", help="records and gpu_timings.json go here")
    parser.add_argument(
        "--limit-s", type=float, default=540.0, help="stop after this many seconds (default 540)"
    )
    parser.add_argument("--only", nargs="+", default=list(GROUPED_STEMS), help="notebook stems")
    parser.add_argument("--datasets", nargs="+", default=None, help="e.g. mnist (default: all)")
    parser.add_argument("--max-group", type=int, default=0, help="most runs in one group (0: no limit)")
    parser.add_argument("--capture", action="store_true", help="CUDA graphs for the steps (CUDA only)")
    parser.add_argument(
        "--figure1", action="store_true", help="then Figure 1's estimator runs, one at a time"
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(args.limit_s)))
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ibcore.core.results import environment
    from ibcore.experiments.table1 import DataCache

    runs = plan(args.profile, [s for s in args.only if s in GROUPED_STEMS], args.datasets)
    timings: dict = {
        "profile": args.profile,
        "environment": environment(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "capture": args.capture,
        "limit_s": args.limit_s,
        "runs_planned": len(runs),
        "groups": [],
        "status": "running",
    }
    path = out / "gpu_timings.json"

    def save() -> None:
        timings["wall_s"] = round(time.perf_counter() - start, 2)
        atomic_write_bytes(path, (json.dumps(timings, indent=1) + "\n").encode())

    cache = DataCache(args.data_dir, device)
    by_kind: dict[str, list[TrainConfig]] = {}
    for kind, config in runs:
        by_kind.setdefault(kind, []).append(config)
    order = sorted(
        ((kind, g) for kind, cs in by_kind.items() for g in group_configs(cs, args.max_group)),
        key=lambda kg: cost(kg[1][0]),
    )
    timings["groups_planned"] = len(order)
    save()
    try:
        for kind, group in order:

            def stored(configs: list, records: list, seconds: float, kind: str = kind) -> None:
                timings["groups"].append(
                    {
                        "kind": kind,
                        "size": len(configs),
                        "trained": len(records),
                        "seconds": round(seconds, 2),
                        "config": configs[0].to_dict(),
                        "finished_s": round(time.perf_counter() - start, 2),
                        "notes": sorted({r["timings"].get("note", "") for r in records} - {""}),
                    }
                )
                save()

            run_groups(group, out, device, cache.get, kind=kind, capture=args.capture, on_group=stored,
                       save_models=(kind == "fig3"))  # fmt: skip
        if args.figure1:
            from ibcore.core.results import run_all
            from ibcore.experiments import figure1
            from ibcore.orchestration.jobs import stem_plan

            jobs = stem_plan(args.profile, only=["fig1_estimators"], root=ROOT).get("fig1_estimators", [])
            t0 = time.perf_counter()
            run_all(out, "figure1", [j.config for j in jobs], figure1.record_runner(device, args.data_dir),
                    progress=False)  # fmt: skip
            timings["figure1"] = {"runs": len(jobs), "seconds": round(time.perf_counter() - t0, 2)}
        timings["status"] = "complete"
    except OutOfTime:
        timings["status"] = "cut"
    finally:
        signal.alarm(0)
        timings["runs_stored"] = sum(g["trained"] for g in timings["groups"])
        save()
    print(
        f"[gpu_paper] {timings['status']}: {timings['runs_stored']} of {len(runs)} runs in "
        f"{len(timings['groups'])} groups, {timings['wall_s']:.0f} s on {device}; {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
