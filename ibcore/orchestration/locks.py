"""One writer per record: a lock file per run, beside its record.

:func:`run_lock` creates ``<record>.lock`` atomically (``O_CREAT | O_EXCL``) holding
``"host pid"`` and removes it when the block ends. A lock of a dead process is taken over; one
held by a live process raises :class:`RunningElsewhere`, so two pipelines (or two prefetches,
with any number of workers) on one results folder never train the same run twice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


class RunningElsewhere(Exception):
    """The run's lock is held by another live process (another pipeline on the same folder)."""

    def __init__(self, lock: Path, owner: str) -> None:
        super().__init__(f"running elsewhere ({owner} holds {lock})")
        self.lock = Path(lock)
        self.owner = owner

    def __reduce__(self) -> tuple:  # raised on a Dask worker, unpickled here
        return (type(self), (self.lock, self.owner))


def _owner_alive(text: str) -> bool:
    """Whether the owner ``"host pid"`` of a lock file is alive. A lock of another host is
    taken to be alive (its process cannot be seen from here); an unreadable one is stale."""
    try:
        host, pid_text = text.split()
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends: gone
        return False


def lock_owner(lock: Path) -> str | None:
    """``"host pid"`` of the live process holding ``lock``, or None when it is free or stale."""
    try:
        text = Path(lock).read_text(encoding="utf8").strip()
        if not text and time.time() - Path(lock).stat().st_mtime < 5:
            return "a process that has just created it"  # between its creation and its write
    except OSError:
        return None
    return text if _owner_alive(text) else None


@contextlib.contextmanager
def run_lock(lock: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock file ``lock`` (created atomically, holding ``"host pid"``) for the block.
    A lock of a dead process is taken over; one held by a live process raises
    :class:`RunningElsewhere`. The lock is removed when the block ends, however it ends."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = lock_owner(lock)
            if owner is not None:
                raise RunningElsewhere(lock, owner) from None
            # Stale: take it over through a rename, so two processes cannot both remove it.
            stale = lock.with_name(f"{lock.name}.stale.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(lock, stale)
                stale.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf8") as f:
            f.write(me + "\n")
        break
    else:
        raise RunningElsewhere(lock, "a process that keeps retaking it")
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            if lock.read_text(encoding="utf8").strip() == me:
                lock.unlink()
