"""One results format for every experiment: a JSON record per run, written atomically.

A record is a dict with keys ``kind`` (experiment name), ``run_id``, ``config`` (every
parameter that defines the run), ``status`` ("complete", or "diverged" for a run stopped by a
non-finite value, with ``failure``), ``metrics`` (scalars), ``curves``
(lists), ``timings`` (seconds), ``environment`` (library versions, device) and ``data_source``.
Records live at ``<results_dir>/<kind>/<run_id>.json``; ``run_id`` is a hash of the config,
so re-running a finished configuration is skipped and a changed one gets a new file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


def config_id(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def record_path(results_dir: str | os.PathLike, kind: str, config: dict[str, Any]) -> Path:
    return Path(results_dir) / kind / f"{config_id(config)}.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Library versions and the device a run used."""
    import numpy

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": str(device) if device is not None else None,
    }
    if device is not None and torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


#: Statuses of a finished run: "diverged" runs (non-finite values, see
#: :func:`ibcore.training.train_ib_layerwise`) are stored and not rerun, but :func:`load_records`
#: and the tables read "complete" runs only.
FINISHED = ("complete", "diverged")


def write_record(results_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Store a complete record atomically; returns its path."""
    for key in ("kind", "config", "metrics"):
        if key not in record:
            raise ValueError(f"a record needs the key {key!r}")
    status = record.get("status", "complete")
    if status not in FINISHED:
        raise ValueError(f"a record's status must be one of {FINISHED}, got {status!r}")
    record = {**record, "run_id": config_id(record["config"]), "status": status}
    path = record_path(results_dir, record["kind"], record["config"])
    atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True, default=float).encode())
    return path


def read_record(results_dir: str | os.PathLike, kind: str, config: dict[str, Any]) -> dict | None:
    """The finished record of ``config`` (status "complete" or "diverged"), or None when it has
    not been run."""
    path = record_path(results_dir, kind, config)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("status") in FINISHED else None


def load_records(results_dir: str | os.PathLike, kind: str) -> list[dict]:
    """All complete records of experiment ``kind`` under ``results_dir``."""
    folder = Path(results_dir) / kind
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "complete":
            out.append(record)
    return out


def flatten(records: Iterable[dict], config_keys: Iterable[str], metric_keys: Iterable[str]) -> list[dict]:
    """Rows of chosen config and metric fields, ready for ``pandas.DataFrame``."""
    config_keys, metric_keys = list(config_keys), list(metric_keys)
    return [
        {**{k: r["config"].get(k) for k in config_keys}, **{k: r["metrics"].get(k) for k in metric_keys}}
        for r in records
    ]


def run_all(
    results_dir: str | os.PathLike,
    kind: str,
    configs: Iterable[dict[str, Any]],
    run_one,
    progress: bool = True,
    on_stored=None,
) -> list[dict]:
    """Run each config not yet stored, store its record as soon as it ends, return all records.

    ``run_one(config) -> dict`` returns the record's ``metrics`` and optionally ``curves``,
    ``timings``, ``environment``, ``data_source``. Finished configs are read back, not rerun;
    an interruption loses at most the run in progress (which may resume from its own
    checkpoint, see :mod:`ibcore.training`).
    """
    from tqdm.auto import tqdm

    configs = list(configs)
    records = []
    bar = tqdm(configs, desc=kind, disable=not progress)
    for config in bar:
        record = read_record(results_dir, kind, config)
        if record is None:
            out = run_one(config)
            record = {"kind": kind, "config": config, **out}
            write_record(results_dir, record)
            record = read_record(results_dir, kind, config)
            if on_stored is not None:  # e.g. drop the run's checkpoint, now that the record is safe
                on_stored(config)
        records.append(record)
    return records


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as given when absolute, else relative to the project root (the nearest folder
    at or above the working directory that holds ``_toc.yml``), so notebooks run from ``nbs/``
    (nbval) and from the root (papermill) share one results folder."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder / p
    return here / p
