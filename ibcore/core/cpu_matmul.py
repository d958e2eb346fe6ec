"""The library that multiplies float32 matrices on the CPU: MKL (torch's default) or oneDNN.

torch computes float32 matrix products on the CPU with MKL. On a CPU that MKL does not take for
an Intel one (this project's AMD EPYC) MKL runs its AVX2 code; oneDNN's brgemm kernels run
AVX-512 there, in float32 (the benchmark records ``results/bench/latest_mkl.json`` and
``latest.json`` time the training steps under each).

torch sends float32 products to oneDNN only when it is allowed to compute them in bfloat16
(``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``). On a CPU without AMX oneDNN still
computes them in float32 (its ``brg_matmul:avx512_core`` kernel, f32 in and out), but on another
CPU it may not. So :func:`resolve` ("auto") takes oneDNN only after a check on this
machine: products at the shapes of this project's nets, forward and transposed, against float64,
must be as accurate as float32 (relative error <= :data:`FLOAT32_TOLERANCE`; a bfloat16 product
is off by ~1e-3). Otherwise MKL stays. Either way the products are float32; they round
differently (a different summation order), so a run trained with one library does not repeat
bit for bit with the other. Records say which one they used (``environment.cpu_matmul``).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch

BACKENDS = ("auto", "mkl", "onednn")
#: The environment variable that overrides the "auto" choice (``mkl`` or ``onednn``).
ENV_VAR = "IBCORE_CPU_MATMUL"
#: Largest relative error (max |C - C64| / max |C64|) accepted from a float32 product; float32
#: products of these sizes are off by ~1e-6, bfloat16 ones by ~1e-3.
FLOAT32_TOLERANCE = 1e-5
#: (m, k, n) of the products checked: the MNIST MLP's layers and critics at batch 128, and the
#: transposed products of their weight gradients; each also as a batch of 4 (grouped runs).
CHECKED_SHAPES = ((128, 784, 512), (512, 128, 784), (128, 512, 256), (128, 256, 10), (128, 512, 128))


def _set(backend: str) -> None:
    torch.backends.mkldnn.matmul.fp32_precision = "bf16" if backend == "onednn" else "none"


def in_effect() -> str:
    """The library torch uses for float32 CPU products now: "onednn" or "mkl"."""
    return "onednn" if torch.backends.mkldnn.matmul.fp32_precision == "bf16" else "mkl"


def relative_error(m: int, k: int, n: int, transposed: bool = False, batch: int = 0) -> float:
    """max |A B - (A B)_float64| / max |(A B)_float64| of float32 A [m, k], B [k, n] under the
    library in effect (B given transposed in memory when ``transposed``; ``batch`` > 0: that many
    products at once, as the grouped runs' batched products)."""
    gen = torch.Generator().manual_seed(m * 1_000_003 + k * 1009 + n)
    lead = (batch,) if batch else ()
    a = torch.randn(*lead, m, k, generator=gen)
    b = torch.randn(*lead, n, k, generator=gen).mT if transposed else torch.randn(*lead, k, n, generator=gen)
    exact = a.double() @ b.double()
    return float((a @ b).double().sub(exact).abs().max() / exact.abs().max())


@functools.cache
def onednn_is_float32() -> bool:
    """Whether oneDNN's products at :data:`CHECKED_SHAPES` are float32-accurate on this CPU
    (checked once per process, a few milliseconds)."""
    if not torch.backends.mkldnn.is_available():
        return False
    previous = torch.backends.mkldnn.matmul.fp32_precision
    try:
        _set("onednn")
        return all(
            relative_error(m, k, n, t, batch) <= FLOAT32_TOLERANCE
            for m, k, n in CHECKED_SHAPES
            for t in (False, True)
            for batch in (0, 4)
        )
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = previous


def resolve(backend: str = "auto") -> str:
    """The library ``backend`` names on this machine: "mkl" or "onednn". "auto" reads
    :data:`ENV_VAR` and otherwise takes oneDNN where :func:`onednn_is_float32`. Asking for
    "onednn" where its products are not float32 raises ValueError: the runs would not be
    float32 runs."""
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"{ENV_VAR}={backend!r} is not a CPU matmul library; use one of {BACKENDS}")
        if backend == "auto":
            return "onednn" if onednn_is_float32() else "mkl"
    if backend not in BACKENDS:
        raise ValueError(f"cpu_matmul={backend!r} is not a CPU matmul library; use one of {BACKENDS}")
    if backend == "onednn" and not onednn_is_float32():
        raise ValueError(
            "cpu_matmul='onednn': oneDNN's float32 products are not float32-accurate on this CPU "
            f"(relative error above {FLOAT32_TOLERANCE}); use 'mkl' or 'auto'"
        )
    return backend


@contextlib.contextmanager
def cpu_matmul(backend: str = "auto") -> Iterator[str]:
    """float32 CPU products by ``backend`` (:func:`resolve`) for the ``with`` block, restored
    after it; yields the library in effect."""
    previous = torch.backends.mkldnn.matmul.fp32_precision
    chosen = resolve(backend)
    _set(chosen)
    try:
        yield chosen
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = previous
