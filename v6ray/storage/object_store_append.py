"""The journal's appends and compaction on object storage (S3, GCS, Azure), via deltalake.

Why not ``LocalAppender`` there: it publishes a commit by hard-linking a staged entry to
its final name (put-if-absent on a POSIX file system) and deletes files with ``os.remove``;
an object store has neither. Here every commit goes through deltalake's own commit path:
``write_deltalake`` onto the open ``DeltaTable`` (its snapshot is kept and advanced, so a
commit does not re-list the log), which writes ``_delta_log/<version>.json`` with the
store's put-if-absent (on S3 the conditional put ``location.DataRoot`` turns on) and, when
another writer took that version, re-checks for conflicts and tries the next one (blind
appends never conflict). ``write_deltalake`` returns only once its entry is stored, so an
acknowledged append is durable: the queue acknowledges after ``append`` returns.

Cost: about 2.4x a local hand-built append per commit (issue measurements; see
bench/queue_bench.py for the figure on this machine), which group commit amortises.
A checkpoint every ``CHECKPOINT_INTERVAL`` commits keeps opening the table (a restart's
replay) from listing and reading an ever longer log.

Writers: one queue actor writes the journal (Ray keeps one live actor per name and
namespace). On a local disk a ``flock`` also keeps out a second process; object stores
have no such lock, so none is taken here. What still holds with a second writer: the
conditional put means no commit ever overwrites another (nothing acknowledged is lost),
and the compaction's overwrite, based on the version it read, is refused by deltalake's
conflict check if a commit it cannot see changed data it rewrote. Two services on one data
root remain a configuration error, as they are on a shared file system.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import SchemaMismatchError

from v6ray.errors import SchemaMismatch

# Every this many commits deltalake writes a checkpoint after committing (post-commit
# hook); ~10 keeps a restart's log replay short without a checkpoint on every append.
CHECKPOINT_INTERVAL = 10
TABLE_CONFIGURATION = {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}
# deltalake's own retries of a commit that lost its version to another writer.
MAX_COMMIT_RETRIES = 15


class ObjectStoreAppender:
    """Appends Arrow tables to the Delta table at ``path`` (which must exist) with
    deltalake's commit, and compacts it; the ``LocalAppender`` counterpart for URIs."""

    def __init__(self, path: str, storage_options: dict[str, str]) -> None:
        self.path = path
        self._options = storage_options  # secrets inside: never logged or shipped
        self._table = DeltaTable(path, storage_options=storage_options)
        # Appends and a compaction run on different threads; the table object is not
        # shared between them (compaction opens its own snapshot).
        self._lock = threading.Lock()
        self._commit = CommitProperties(max_commit_retries=MAX_COMMIT_RETRIES)
        self._stale = False  # re-open the table before the next append

    @property
    def version(self) -> int:
        return self._table.version()

    def append(self, data: pa.Table) -> int:
        """Commit ``data`` as one new version; returns it. ``SchemaMismatch`` (nothing
        committed) when the rows do not fit the table."""
        with self._lock:
            if self._stale:
                self._table = DeltaTable(self.path, storage_options=self._options)
                self._stale = False
            try:
                write_deltalake(self._table, data, mode="append", commit_properties=self._commit)
            except SchemaMismatchError as exc:
                raise SchemaMismatch(self.path.rsplit("/", 1)[-1], str(exc)) from None
            except Exception:
                # The snapshot may be one whose log entries a compaction's cleanup has
                # since removed ("Invalid table version"): the caller's retry re-opens it.
                # Nothing was committed (a commit either stores its entry or raises).
                self._stale = True
                raise
            return self._table.version()

    def compact(self, keep_latest: Callable[[pl.DataFrame], pa.Table]) -> dict[str, Any]:
        """Rewrite the table to ``keep_latest(frame)`` of the rows it holds, vacuum the
        files that rewrite removed, checkpoint; returns what was done.

        The rewrite is an overwrite based on the version read: deltalake removes exactly
        the files of that version, so rows appended meanwhile (blind appends, which the
        overwrite's conflict check lets through) stay, with their higher ``seq``.
        """
        started = time.monotonic()
        snapshot = DeltaTable(self.path, storage_options=self._options)
        frame = pl.from_arrow(snapshot.to_pyarrow_table())
        latest = keep_latest(frame)
        if latest.num_rows:
            write_deltalake(snapshot, latest, mode="overwrite", commit_properties=self._commit)
        # Lite vacuum (full=False): deletes only files a commit removed, never a file an
        # in-flight append wrote but has not committed yet (a full vacuum would).
        removed = snapshot.vacuum(
            retention_hours=0, dry_run=False, enforce_retention_duration=False
        )
        snapshot.create_checkpoint()
        snapshot.cleanup_metadata()
        with self._lock:  # the appends' snapshot may predate the log entries just removed
            self._stale = True
        return {
            "rows_before": frame.height,
            "rows_after": latest.num_rows,
            "files_removed": len(removed),
            "files": len(snapshot.file_uris()),
            "version": snapshot.version(),
            "seconds": round(time.monotonic() - started, 3),
        }
