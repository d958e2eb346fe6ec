"""Benchmark of the training and estimation loops: ``python3 -m ibcore.bench``.

Measures, on synthetic tensors of the real shapes (no data files needed):

- the time of one layer-by-layer IB training iteration (:func:`ibcore.core.training.ib_iteration`,
  the exact body of the trainer's loop; the tied critic, and on the MNIST MLP the paper's AA-MINE
  penalty) for every layer of the
  MNIST MLP (784-512-256-10) and of the CIFAR-10 conv-net (channels 32-64-128, 4 layers), and
  its ratio to one cross-entropy iteration (:func:`ibcore.core.training.ce_step`) of the same net,
  same batch size (128) and device; for the full IB row (beta > 0) and the "I(Y;L_i) only"
  row (beta = 0) of Table 1;
- MINE and AA-MINE training steps per second at the Figure 1 settings (MLP 784-256-128-64
  with random weights, batch 128 and 256), timed through ``estimate()`` itself: the time of
  S2 - S1 extra steps, so set-up and held-out evaluation cancel;
- the wall time of each notebook and of the whole main job per profile, read from
  ``results/<profile>/pipeline_timings.json`` where present;
- peak memory: the process's maximum resident set size (CPU) and
  ``torch.cuda.max_memory_allocated`` per measurement (CUDA).

Timings use :class:`torch.utils.benchmark.Timer` (``blocked_autorange``: warm-up, then blocks
of repeats), in several interleaved rounds, medians reported; every IB timing is paired with a
CE timing taken right before it and the IB / CE ratio is the median of these paired ratios, so
a load change on a shared machine hits both alike. The record (machine, device, torch version,
date, threads, system load before and after) is written atomically to ``<out>/<name>.json``
with a Markdown table beside it (``<name>.md``). ``benchmarks/paired_before_after.py`` times
the original (reference) step against the current one in the same way.

The package's modules: :mod:`~ibcore.bench.machine` (machine record, clock, peak memory),
:mod:`~ibcore.bench.steps` (training-step timings), :mod:`~ibcore.bench.estimators` (MINE /
AA-MINE rates), :mod:`~ibcore.bench.record` (the record, pipeline wall times, Markdown),
:mod:`~ibcore.bench.grouped_runs` (grouped vs one at a time, issue 14), :mod:`~ibcore.bench.frames`
(tables for the book page), :mod:`~ibcore.bench.projection` (a profile's wall time projected from
its stored runs) and :mod:`~ibcore.bench.cli` (the command line); every name is re-exported here.
"""

from ibcore.bench.cli import main, parse_args
from ibcore.bench.estimators import FIG1_BATCHES, FIG1_SIGMA2, FIG1_WIDTHS, bench_estimators
from ibcore.bench.frames import (
    case_label,
    estimator_frame,
    pipeline_frame,
    read_paired,
    read_projections,
    read_records,
    speedups,
    training_frame,
)
from ibcore.bench.grouped_runs import (
    GROUPED_BETAS,
    GROUPED_KIND,
    GROUPED_SEEDS,
    bench_grouped,
    grouped_cell,
    grouped_frame,
    read_grouped,
)
from ibcore.bench.machine import Section, _median_iqr, _utc_now, machine_info, peak_rss_mib, time_call
from ibcore.bench.record import (
    KIND,
    PROFILES,
    TIMINGS_NAME,
    VERSION,
    markdown_report,
    pipeline_timings,
    run_benchmark,
    write_record,
)
from ibcore.bench.steps import (
    BATCH_SIZE,
    BETAS,
    CASES,
    NETS,
    PENALTY_NETS,
    SIGMA,
    _ce_iteration,
    _ib_iterations,
    _net,
    bench_training,
)

__all__ = [
    "BATCH_SIZE", "BETAS", "CASES", "PENALTY_NETS", "case_label",
    "FIG1_BATCHES", "FIG1_SIGMA2", "FIG1_WIDTHS", "GROUPED_BETAS", "GROUPED_KIND",
    "GROUPED_SEEDS", "KIND", "NETS", "PROFILES", "SIGMA", "TIMINGS_NAME", "VERSION", "Section",
    "_ce_iteration", "_ib_iterations", "_median_iqr", "_net", "_utc_now", "bench_estimators",
    "bench_grouped", "bench_training", "estimator_frame", "grouped_cell", "grouped_frame", "machine_info",
    "main", "markdown_report", "parse_args", "peak_rss_mib", "pipeline_frame", "pipeline_timings",
    "read_grouped", "read_paired", "read_projections", "read_records", "run_benchmark", "speedups",
    "time_call", "training_frame", "write_record",
]  # fmt: skip
