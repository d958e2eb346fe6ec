"""Paired timing of the training steps before and after the loop optimisation, in one process.

"Before" is the straightforward implementation kept in tests/test_loop_equivalence.py (the
trainers' original step: the layer forward run twice, the tied AA-MINE critic scored through
torch.cdist and torch.logsumexp, plain for-loop Adam everywhere); "after" is
ibcore.core.training.ib_step / ce_step as the trainers run them. Every round times, for each case,
CE-before, IB-before, CE-after, IB-after back to back, so a load change on a shared machine
hits both versions alike. Run from the repository root:

    OMP_NUM_THREADS=1 python3 benchmarks/paired_before_after.py [--rounds 5] [--nets mnist_mlp ...]

Writes results/bench/paired_before_after.json (and .md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_loop_equivalence as reference  # noqa: E402

from ibcore import bench  # noqa: E402
from ibcore.core import training  # noqa: E402
from ibcore.core.critics import critic_param_groups  # noqa: E402
from ibcore.core.results import atomic_write_bytes  # noqa: E402


def plain_adam(params, lr):
    return torch.optim.Adam(params, lr=lr, foreach=False, fused=False)


def ce_iteration(name, device, n, version):
    """One iteration of the CE trainer's loop; "before" with the plain Adam it used to have."""
    torch.manual_seed(0)
    model, config = bench._net(name)
    model = model.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    x_all = torch.randn((n, *bench.NETS[name]["input_shape"]), generator=gen, device=device)
    y_all = torch.randint(10, (n,), generator=gen, device=device)
    if version == "before":
        opt = plain_adam(list(model.parameters()), config.lr)
    else:
        opt = training.ce_optimizer(model, config)

    def it():
        idx = torch.randint(n, (config.batch_size,), generator=gen, device=device)
        training.ce_step(model, opt, x_all[idx], y_all[idx])

    return it


def ib_iterations(name, beta, device, n, version):
    torch.manual_seed(0)
    model, base = bench._net(name)
    model = model.to(device)
    config = dataclasses.replace(base, method="ib", beta=beta)
    gen = torch.Generator(device=device).manual_seed(0)
    x_all = torch.randn((n, *bench.NETS[name]["input_shape"]), generator=gen, device=device)
    y_all = torch.randint(10, (n,), generator=gen, device=device)
    model.requires_grad_(False)
    out = []
    h_prev_all = x_all
    for block in model.blocks:
        shape, params, opt_layer, objective = training.ib_layer_setup(block, h_prev_all, 10, config)
        if version == "before":
            opt_layer = plain_adam(params, config.lr)
            objective.opt = plain_adam(
                critic_param_groups(objective.critic_y, config.critic_lr)
                + critic_param_groups(objective.critic_x, config.critic_lr),
                config.critic_lr,
            )

            def it(block=block, h=h_prev_all, shape=shape, opt_layer=opt_layer, objective=objective):
                # the original batch draw: sigma * randn (same numbers as ib_batch's normal_)
                idx = torch.randint(h.shape[0], (config.batch_size,), generator=gen, device=device)
                perm = training.marginal_permutation(config.batch_size, gen)
                noise = config.sigma * torch.randn((config.batch_size, *shape), generator=gen, device=device)
                reference.ref_ib_step(block, opt_layer, objective, h[idx], y_all[idx], perm, noise, beta)

        else:

            def it(
                block=block,
                h=h_prev_all,
                shape=shape,
                params=params,
                opt_layer=opt_layer,
                objective=objective,
            ):
                hp, y, perm, noise = training.ib_batch(h, y_all, shape, config, gen)
                training.ib_step(block, params, opt_layer, objective, hp, y, perm, noise, beta)

        out.append(it)
        h_prev_all = training.apply_in_chunks(block, h_prev_all)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--nets", nargs="+", default=["mnist_mlp", "cifar10_convnet"])
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "paired_before_after"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")
    record = {
        "kind": "bench_paired",
        "date": bench._utc_now(),
        "machine": bench.machine_info(device),
        "settings": {
            "rounds": args.rounds,
            "min_run_time_s": args.min_run_time,
            "batch_size": bench.BATCH_SIZE,
        },
        "rows": [],
    }
    start = time.perf_counter()
    for name in args.nets:
        ce = {v: ce_iteration(name, device, 2048, v) for v in ("before", "after")}
        cases = []
        for beta in bench.BETAS:
            ib = {v: ib_iterations(name, beta, device, 2048, v) for v in ("before", "after")}
            for layer in range(len(ib["after"])):
                cases.append((beta, layer + 1, ib["before"][layer], ib["after"][layer]))
        data = {(b, k): {"before": [], "after": [], "ce_before": [], "ce_after": []} for b, k, *_ in cases}
        for r in range(args.rounds):
            for beta, layer, fb, fa in cases:
                d = data[(beta, layer)]
                for v, f in (("before", fb), ("after", fa)):
                    d[f"ce_{v}"].append(bench.time_call(ce[v], args.min_run_time))
                    d[v].append(bench.time_call(f, args.min_run_time))
                print(
                    f"{name} beta={beta:g} L{layer} round {r + 1}: before {1e3 * d['before'][-1]:.2f} ms "
                    f"(CE {1e3 * d['ce_before'][-1]:.2f}), after {1e3 * d['after'][-1]:.2f} ms "
                    f"(CE {1e3 * d['ce_after'][-1]:.2f})",
                    flush=True,
                )
        for (beta, layer), d in data.items():
            med = {k: statistics.median(v) for k, v in d.items()}
            record["rows"].append(
                {
                    "net": name,
                    "beta": beta,
                    "layer": layer,
                    **{f"{k}_ms": 1e3 * v for k, v in med.items()},
                    "x_ce_before": statistics.median(
                        b / c for b, c in zip(d["before"], d["ce_before"], strict=True)
                    ),
                    "x_ce_after": statistics.median(
                        a / c for a, c in zip(d["after"], d["ce_after"], strict=True)
                    ),
                    "ib_speedup": statistics.median(
                        b / a for b, a in zip(d["before"], d["after"], strict=True)
                    ),
                    "ce_speedup": statistics.median(
                        b / a for b, a in zip(d["ce_before"], d["ce_after"], strict=True)
                    ),
                    "rounds": {k: v for k, v in d.items()},
                }
            )
    record["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    record["wall_s"] = round(time.perf_counter() - start, 1)
    lines = [
        f"Paired before/after timing of {record['date']} on {record['machine']['cpu']} "
        f"({record['machine']['cpus']} CPUs, 1 thread, load average {record['machine']['load_avg_start']} -> "
        f"{record['machine']['load_avg_end']}); medians over {args.rounds} rounds.",
        "",
        "| net | beta | layer | IB before (ms) | IB after (ms) | IB speed-up | CE before (ms) "
        "| CE after (ms) | x CE before | x CE after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['net']} | {r['beta']:g} | {r['layer']} | {r['before_ms']:.2f} | {r['after_ms']:.2f} | "
            f"{r['ib_speedup']:.2f} | {r['ce_before_ms']:.2f} | {r['ce_after_ms']:.2f} | "
            f"{r['x_ce_before']:.2f} | {r['x_ce_after']:.2f} |"
        )
    out = Path(args.out)
    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(record, indent=1) + "\n").encode())
    atomic_write_bytes(out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    for path in (out.with_suffix(".json"), out.with_suffix(".md")):
        os.chmod(path, 0o644)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
