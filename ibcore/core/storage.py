"""Files written safely: atomically (a temporary file and a rename), world-readable, with errors
that name the file and the fix (full disk, read-only folder), and the project's folders.

Every stored file of :mod:`ibcore.core.results` (records, checkpoints, model weights) and every
page of the pipeline goes through :func:`atomic_write_bytes`, so a killed run never leaves a
half-written file, only a temporary one that :func:`remove_stale_temps` deletes later.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

#: Permissions of every stored file (records, checkpoints, models): as other outputs.
FILE_MODE = 0o644
#: Seconds after its last write when a temporary file is taken to be a killed writer's leftover
#: (a record, a checkpoint or a page being written is rewritten or renamed long before).
STALE_TEMP_S = 3600.0


class StorageError(OSError):
    """A file could not be written (full disk, read-only folder); the message names it and the fix."""

    def __str__(self) -> str:
        return str(self.strerror)


def storage_error(path: str | os.PathLike, err: OSError) -> StorageError:
    """A :class:`StorageError` naming ``path`` and the fix for the OS error ``err``."""
    if err.errno == errno.ENOSPC:
        fix = "no space left on the device; free some space or point results_dir at another disk"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"{os.strerror(err.errno).lower()}; make the folder writable or choose another results_dir"
    elif err.errno == errno.EDQUOT:
        fix = "disk quota exceeded; free some space or point results_dir at another disk"
    else:
        fix = f"{err.strerror or err}"
    out = StorageError(err.errno, f"cannot write {path}: {fix}")
    out.filename = str(path)
    return out


def atomic_write_bytes(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write ``data`` to ``path`` (permissions ``mode``) through a temporary file and a rename:
    never half-written. A full disk or a read-only folder raises :class:`StorageError` naming
    ``path`` and the fix; the temporary file is removed."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, StorageError):
            raise
        raise storage_error(path, err) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to memory, then :func:`atomic_write_bytes` (so a full disk is an OS error
    naming ``path``, not a stream error)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def remove_stale_temps(folder: str | os.PathLike, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete temporary files left under ``folder`` by a killed run (``.<name>.*.tmp`` of
    :func:`atomic_write_bytes` and papermill's ``.<stem>.*.tmp.ipynb``) not written to for
    ``older_than_s`` seconds (younger ones may belong to another live pipeline on the same
    folder); returns them. Call it once, before any worker starts."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for pattern in (".*.tmp", ".*.tmp.ipynb"):
        for path in folder.rglob(pattern):
            try:
                if path.is_file() and now - path.stat().st_mtime >= older_than_s:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed


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
