"""Fewer launches per step (issue 14): a fixed-shape step replayed as a CUDA graph, and the
wall-time share each run of a group records (with the replay's note when capture failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


class Replayable:
    """``fn(*inputs)`` run eagerly, or with ``capture`` (CUDA only) recorded once as a CUDA graph
    after ``warmup`` eager calls and then replayed on static copies of the inputs.

    ``fn`` must update its state in place and must not branch on tensor values; it returns
    nothing. A capture that fails falls back to eager calls (named in ``self.note``)."""

    def __init__(self, fn: Callable[..., None], capture: bool = False, warmup: int = 3) -> None:
        self.fn, self.warmup, self.calls = fn, warmup, 0
        self.capture = capture
        self.graph: Any = None
        self.static: list[Tensor] = []
        self.note = ""

    def __call__(self, *inputs: Tensor) -> None:
        self.calls += 1
        if not self.capture:
            self.fn(*inputs)
            return
        if self.calls <= self.warmup:  # eager warm-up on a side stream, as CUDA graphs require
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return
        if self.graph is None:
            try:
                self.static = [x.clone() for x in inputs]
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self.fn(*self.static)
                self.graph = graph
            except Exception as err:  # noqa: BLE001 - any capture failure: run eagerly instead
                self.capture, self.graph = False, None
                self.note = f"CUDA graph capture failed ({type(err).__name__}: {err}); eager steps"
                self.fn(*inputs)
                return
        for s, x in zip(self.static, inputs, strict=True):
            s.copy_(x)
        self.graph.replay()


def group_timings(elapsed: float, size: int, steps: int, runner: Replayable | None = None) -> dict:
    """A run's share of the group's wall time (``train_seconds``) and the group's own."""
    out = {
        "train_seconds": elapsed / size,
        "seconds_per_step": elapsed / size / steps,
        "group_size": size,
        "group_train_seconds": elapsed,
    }
    if runner is not None and runner.note:
        out["note"] = runner.note
    return out
