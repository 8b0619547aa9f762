"""One writer per table: an exclusive lock its writer holds for as long as it lives.

Why: the journal's appends and compactions are hand-built commits that assume nobody else
writes the table (a compaction removes every file it saw, the open-time sweep deletes
files no commit names). A second writer (a queue actor Ray restarted while the old process
is still dying, a second service on the same data dir) would race them.

How, on local disk: ``fcntl.flock`` on ``<table>/_v6ray_writer.lock``. The kernel drops
the lock when its holder dies, however it dies (SIGKILL included), so a crashed writer
never blocks its successor, as a plain "lock file exists" would. The lock belongs to the
open file, which is not inherited across ``exec`` (Python opens files non-inheritable);
a ``fork`` without exec would share it. The file's name starts with ``_`` so that Delta
vacuums leave it alone. Its text names the holder, for the error a refused writer gets.

On object storage (``s3://``, ...) there is no ``flock`` and no lock is taken
(``SingleWriterByDesign``): the queue is a named Ray actor, of which Ray keeps at most one
alive per namespace, and a commit there is a put-if-absent (S3: conditional put), so even
a stray second writer can never overwrite a commit (``v6ray.storage.object_store_append``
says what it could still disturb). A lease object written with put-if-absent would be the
next step, behind this same seam.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from typing import Protocol

from v6ray.errors import TableLocked

LOCK_FILE = "_v6ray_writer.lock"
POLL_SECONDS = 0.1


class WriterLock(Protocol):
    """Held by at most one writer of a table at a time."""

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` s; ``TableLocked`` if still held."""

    def release(self) -> None:
        """Give the lock up (idempotent)."""


class LocalFileLock:
    """``WriterLock`` for a table on a local (POSIX) file system."""

    def __init__(self, table_dir: str) -> None:
        self.table_dir = table_dir
        self.path = os.path.join(table_dir, LOCK_FILE)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        if self._fd is not None:
            return
        started = time.monotonic()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= timeout:
                        raise TableLocked(self.table_dir, _holder(fd), waited) from None
                    time.sleep(min(POLL_SECONDS, max(0.0, timeout - waited)))
            os.ftruncate(fd, 0)
            os.pwrite(fd, _describe_self().encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it now: name nobody
            os.close(fd)  # closing the file drops the lock


class SingleWriterByDesign:
    """``WriterLock`` for a table on object storage: takes nothing (see the module doc)."""

    def __init__(self, table_uri: str) -> None:
        self.table_dir = table_uri

    def acquire(self, timeout: float) -> None:
        return None

    def release(self) -> None:
        return None


def writer_lock(table_dir: str) -> WriterLock:
    """The lock that guards writes to the table at ``table_dir`` (a folder or a URI)."""
    from v6ray.storage.location import is_uri

    return SingleWriterByDesign(table_dir) if is_uri(table_dir) else LocalFileLock(table_dir)


def _describe_self() -> str:
    return json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    })


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (best effort: it may be mid-write)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
