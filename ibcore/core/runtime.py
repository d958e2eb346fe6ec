"""Device selection and seeding."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``name`` ("auto", "cpu", "cuda", "cuda:1", "mps").

    "auto" picks CUDA when present, else the CPU. A device that is not present raises
    ``ValueError`` naming the parameter, before any work starts.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device={name!r} is not a device name; use 'auto', 'cpu' or 'cuda'") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} was asked for but no CUDA GPU is present; use device='cpu' or 'auto'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s) are present")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} was asked for but MPS is not available; use 'cpu'")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"device={name!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded with ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


#: torch threads of every run, whoever runs it: torch's float32 matrix products round differently
#: with 2 threads than with 1, so a run's record would otherwise depend on the executor (the
#: pipeline's own process with ``--workers 1`` against single-threaded worker processes)
RUN_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int = RUN_THREADS) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the ``with`` block, restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def run_settings() -> Iterator[None]:
    """The settings every run trains under, whoever runs it: :data:`RUN_THREADS` torch threads and
    the CPU's matmul library (:func:`ibcore.core.cpu_matmul.cpu_matmul`, "auto"), so that a record
    does not depend on the executor; both restored after the ``with`` block."""
    from ibcore.core.cpu_matmul import cpu_matmul

    with torch_threads(), cpu_matmul():
        yield
