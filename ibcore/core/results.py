"""One results format for every experiment: a JSON record per run, written atomically.

A record is a dict with keys ``kind`` (experiment name), ``run_id``, ``config`` (every
parameter that defines the run), ``status`` ("complete", or "diverged" for a run stopped by a
non-finite value, with ``failure``), ``metrics`` (scalars), ``curves`` (lists), ``timings``
(seconds), ``environment`` (library versions, device), ``data_source`` and ``format_version``.
Records live at ``<results_dir>/<kind>/<run_id>.json``; ``run_id`` is a hash of the config, so
re-running a finished configuration is skipped and a changed one gets a new file.

Stored state is checked on every read: a record, checkpoint or model file that cannot be read,
that needs more than tensors and plain data (``torch.load(weights_only=True)``), or whose
content does not match its file name's configuration hash is named in one line on stderr and
moved to ``<results_dir>/quarantine/<kind>/`` (:func:`quarantine`), so its run is redone.
Records of format 1 (no ``format_version``) are upgraded on read: missing ``timings`` and
``environment`` become empty ("unknown").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from ibcore.core import storage
from ibcore.core.storage import atomic_write_bytes

# The safe writing of files lives in ibcore.core.storage; these names stay importable from here.
StorageError, FILE_MODE, STALE_TEMP_S = storage.StorageError, storage.FILE_MODE, storage.STALE_TEMP_S
storage_error, atomic_torch_save = storage.storage_error, storage.atomic_torch_save
remove_stale_temps, project_path = storage.remove_stale_temps, storage.project_path

#: Version of the record layout written by :func:`write_record`. 1: no ``format_version`` key
#: (``timings``/``environment`` may be missing); 2: ``format_version`` present.
FORMAT_VERSION = 2
#: The metric every complete record of a kind must hold (older records without it are redone).
REQUIRED_METRICS: dict[str, tuple[str, ...]] = {
    "table1": ("test_accuracy",),
    "fig3": ("test_accuracy",),
    "figure1": ("mi",),
}
#: Timings an upgraded format-1 record gets when it has none: NaN ("unknown"), by kind.
UNKNOWN_TIMINGS: dict[str, dict[str, float]] = {
    "table1": {"train_seconds": math.nan},
    "fig3": {"train_seconds": math.nan},
    "figure1": {"total_s": math.nan},
}
QUARANTINE = "quarantine"


class StoredStateError(RuntimeError):
    """A stored file cannot be used; the message names it (it has been quarantined when possible)."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: Where one-line notes about quarantined files go (replaceable, e.g. in tests).
log: Callable[[str], None] = _log


def config_id(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def record_path(results_dir: str | os.PathLike, kind: str, config: dict[str, Any]) -> Path:
    return Path(results_dir) / kind / f"{config_id(config)}.json"


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Library versions and the device a run used; on the CPU also the library of its float32
    matrix products (:mod:`ibcore.core.cpu_matmul`)."""
    import numpy

    from ibcore.core import cpu_matmul

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": str(device) if device is not None else None,
    }
    if device is not None and torch.device(device).type == "cpu":
        env["cpu_matmul"] = cpu_matmul.in_effect()
    if device is not None and torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


#: Statuses of a finished run: "diverged" runs (non-finite values, see
#: :func:`ibcore.core.training.train_ib_layerwise`) are stored and not rerun, but :func:`load_records`
#: and the tables read "complete" runs only.
FINISHED = ("complete", "diverged")


def write_record(results_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Store a complete record atomically (mode 0644); returns its path."""
    for key in ("kind", "config", "metrics"):
        if key not in record:
            raise ValueError(f"a record needs the key {key!r}")
    status = record.get("status", "complete")
    if status not in FINISHED:
        raise ValueError(f"a record's status must be one of {FINISHED}, got {status!r}")
    record = {
        **record,
        "run_id": config_id(record["config"]),
        "status": status,
        "format_version": FORMAT_VERSION,
    }
    path = record_path(results_dir, record["kind"], record["config"])
    atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True, default=float).encode())
    return path


# -- checking stored state -----------------------------------------------------------------


def quarantine(
    path: str | os.PathLike, reason: str, results_dir: str | os.PathLike | None = None
) -> Path | None:
    """Move the unusable file ``path`` (``<results_dir>/<kind>/<file>``) to
    ``<results_dir>/quarantine/<kind>/<file>`` and say so in one line; returns the new path
    (None when it could not be moved, e.g. a read-only folder: then it is only named)."""
    path = Path(path)
    root = Path(results_dir) if results_dir is not None else path.parent.parent
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.parent.name) / path.name
    dest = root / QUARANTINE / rel
    if dest.exists():
        dest = dest.with_name(f"{dest.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    except OSError as err:
        log(f"[ibcore] {path}: {reason}; could not move it aside ({err.strerror}): delete it to redo the run")
        return None
    log(f"[ibcore] {path}: {reason}; moved to {dest}, the run will be redone")
    return dest


def check_record(record: Any, path: Path, kind: str | None = None) -> dict:
    """The record read from ``path``, upgraded to :data:`FORMAT_VERSION`; raises
    :class:`StoredStateError` saying what is wrong."""
    if not isinstance(record, dict):
        raise StoredStateError(f"holds a JSON {type(record).__name__}, not a record")
    config = record.get("config")
    if not isinstance(config, dict):
        raise StoredStateError("has no 'config' mapping")
    if config_id(config) != path.stem:
        raise StoredStateError(
            f"its config hashes to {config_id(config)}, not to its file name {path.stem} (edited by hand?)"
        )
    if kind is not None and record.get("kind", kind) != kind:
        raise StoredStateError(f"is of kind {record.get('kind')!r}, stored under {kind!r}")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise StoredStateError("has no 'metrics' mapping")
    required = REQUIRED_METRICS.get(kind or record.get("kind", ""), ())
    missing = [m for m in required if m not in metrics] if record.get("status") == "complete" else []
    if missing:
        raise StoredStateError(f"lacks metrics {missing} (an older format)")
    version = record.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoredStateError(
            f"has format_version {version!r}, newer than this code's {FORMAT_VERSION}: update ibcore"
        )
    for key in ("timings", "environment", "curves"):
        if not isinstance(record.get(key, {}), dict):
            raise StoredStateError(f"its {key!r} is not a mapping")
    if version < FORMAT_VERSION:  # format 1: timings and environment may be missing -> unknown
        unknown = UNKNOWN_TIMINGS.get(kind or record.get("kind", ""), {})
        record = {
            **record,
            "timings": {**unknown, **record.get("timings", {})},
            "environment": {"device": None, **record.get("environment", {})},
            "curves": record.get("curves", {}),
            "format_version": FORMAT_VERSION,
        }
    return record


def read_record_file(
    path: str | os.PathLike,
    kind: str | None = None,
    results_dir=None,
    statuses: tuple[str, ...] = ("complete",),
) -> dict | None:
    """The checked record at ``path``; None when it is absent, its status is not one of
    ``statuses``, or it is unusable (then quarantined, see :func:`quarantine`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        quarantine(path, f"unreadable record ({err})", results_dir)
        return None
    try:
        record = check_record(json.loads(text), path, kind)
    except ValueError as err:
        quarantine(path, f"not valid JSON ({err}; truncated?)", results_dir)
        return None
    except StoredStateError as err:
        quarantine(path, f"record {err}", results_dir)
        return None
    return record if record.get("status") in statuses else None


def load_state(path: str | os.PathLike, what: str = "file", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never code.

    Raises :class:`StoredStateError` naming ``path`` when it cannot be read (truncated) or
    needs more than tensors and plain data (refused)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        text = str(err)
        if "weights_only" in text or "Unsupported global" in text or "Weights only load failed" in text:
            raise StoredStateError(
                f"{what} {path} needs more than tensors and plain data to load; refused "
                "(only weights_only=True files are read)"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        raise StoredStateError(f"{what} {path} cannot be read ({first}); truncated or corrupt") from None


def checked_state(path: str | os.PathLike, what: str = "file", results_dir=None) -> Any | None:
    """:func:`load_state`, but a bad file is quarantined and None returned (the run is redone)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return load_state(path, what)
    except StoredStateError as err:
        quarantine(path, str(err).replace(f"{what} {path} ", "", 1), results_dir)
        return None


def model_path(results_dir: str | os.PathLike, kind: str, config: dict[str, Any]) -> Path:
    """Where the trained weights of ``config`` are kept (``save_models=True``)."""
    return record_path(results_dir, kind, config).with_suffix(".model.pt")


def read_record(
    results_dir: str | os.PathLike, kind: str, config: dict[str, Any], require_model: bool = False
) -> dict | None:
    """The finished record of ``config`` (status "complete" or "diverged"), or None when it has
    not been run (or its stored state was unusable and has been quarantined). ``require_model``:
    the run's weights file must exist and load, else the record is quarantined too and the run
    redone."""
    path = record_path(results_dir, kind, config)
    record = read_record_file(path, kind, results_dir, statuses=FINISHED)
    if record is None or not require_model or record["status"] != "complete":
        return record
    weights = model_path(results_dir, kind, config)
    if not weights.is_file():
        quarantine(path, f"its model file {weights.name} is missing", results_dir)
        return None
    if checked_state(weights, "model file", results_dir) is None:
        quarantine(path, f"its model file {weights.name} was unusable", results_dir)
        return None
    return record


def read_records(
    results_dir: str | os.PathLike, kind: str, configs: Iterable[Any], require_model: bool = False
) -> list[dict]:
    """The finished records (:func:`read_record`) of ``configs`` (dicts, or objects with
    ``to_dict()`` such as :class:`ibcore.core.config.TrainConfig`), in their order; a config
    with no usable record is left out. Reads only: nothing is run."""
    out = []
    for config in configs:
        config = config.to_dict() if hasattr(config, "to_dict") else config
        record = read_record(results_dir, kind, config, require_model)
        if record is not None:
            out.append(record)
    return out


def is_record_name(path: Path) -> bool:
    """Whether ``path`` is named as a record: ``<run id>.json``, the run id 16 hex digits
    (:func:`config_id`); files stored beside records (``<run id>.tsne.json``) are not."""
    return path.suffix == ".json" and len(path.stem) == 16 and all(c in "0123456789abcdef" for c in path.stem)


def load_records(
    results_dir: str | os.PathLike, kind: str, statuses: tuple[str, ...] = ("complete",)
) -> list[dict]:
    """All checked records of experiment ``kind`` under ``results_dir`` whose status is one of
    ``statuses`` (complete ones by default; a diverged run is stored as "diverged"); unusable
    ones are quarantined and left out."""
    folder = Path(results_dir) / kind
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        if not is_record_name(path):  # e.g. <run>.tsne.json beside a record: not a record itself
            continue
        record = read_record_file(path, kind, results_dir, statuses)
        if record is not None:
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
    require_model: bool = False,
) -> list[dict]:
    """Run each config not yet stored, store its record as soon as it ends, return all records.

    ``run_one(config) -> dict`` returns the record's ``metrics`` and optionally ``curves``,
    ``timings``, ``environment``, ``data_source``. Finished configs are read back, not rerun;
    an interruption loses at most the run in progress (which may resume from its own
    checkpoint, see :mod:`ibcore.core.training`).
    """
    from tqdm.auto import tqdm

    configs = list(configs)
    records = []
    bar = tqdm(configs, desc=kind, disable=not progress)
    for config in bar:
        record = read_record(results_dir, kind, config, require_model)
        if record is None:
            out = run_one(config)
            record = {"kind": kind, "config": config, **out}
            write_record(results_dir, record)
            record = read_record(results_dir, kind, config, require_model)
            if on_stored is not None:  # e.g. drop the run's checkpoint, now that the record is safe
                on_stored(config)
        records.append(record)
    return records
