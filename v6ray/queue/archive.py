"""The archive of ``ib_requests``: finished requests older than the retention window.

A restart reads only ``ib_requests`` (the hot journal), so what it costs follows the live
work and the retention window, not years of history. ``ib_requests_archive`` is a Delta
table of the same schema holding one row per archived request (its final state, ``seq``
kept); ``v6ray.read_table("ib_requests")`` and ``Journal.lookup`` read both.

Moving rows out of the hot journal takes two commits to two tables, so it is made safe
against a crash at any point:

1. the archive's data file is written (unreferenced: nobody reads it yet);
2. a manifest (``_v6ray_move.json`` in the archive's folder: delta-rs never lists files
   whose name starts with ``_``) names that file and the hot files the move replaces;
3. the archive commits the file: its rows are now in both tables (same rows, same
   ``seq``: readers keep one, see ``v6ray.storage.reader.with_archived_requests``);
4. the hot journal commits the removal of the replaced files (and their rewritten rest);
5. the manifest is deleted.

A crash before 4 leaves the replaced files in the hot journal; the next compaction finds
the manifest (``recover``), sees them still there and takes step 3 back (a commit removing
the archive file), so the rows are archived once, by a later move. After 4 the manifest
only needs deleting. Archived requests are final, and a final request never gets another
row (``QueueCore``), so no append can race a move of the same request.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from v6ray.storage.local_append import LocalAppender, remove_stale_files
from v6ray.storage.reader import retry_vacuum_race
from v6ray.storage.schemas import IB_REQUESTS_SCHEMA, requests_archive_path

MANIFEST = "_v6ray_move.json"
# Checkpoint the archive's log every this many commits (about one move a day).
CHECKPOINT_EVERY = 20
# A move adds one file (about one a day): once this many are smaller than SMALL_FILE_BYTES,
# they are merged into one, so reading the archive opens tens of files a year, not hundreds.
# Each merge reads at most MERGE_AT small files: its cost does not grow with the history.
MERGE_AT = 32
SMALL_FILE_BYTES = 64 * 2**20


class RequestArchive:
    """The writer's side of ``ib_requests_archive`` (under the journal's writer lock)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        configuration: dict[str, str],
        stale_file_age: float,
    ) -> None:
        self.path = requests_archive_path(data_dir)
        self.manifest = os.path.join(self.path, MANIFEST)
        self.configuration = configuration
        self.stale_file_age = stale_file_age
        self._appender: LocalAppender | None = None  # the table is created by the first move

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.path)

    def max_seq(self) -> int:
        """The highest ``seq`` archived, from the log's file statistics (no data read)."""
        if not self.exists():
            return 0
        actions = pa.table(
            retry_vacuum_race(lambda: DeltaTable(self.path).get_add_actions(flatten=True))
        )
        if not actions.num_rows or "max.seq" not in actions.column_names:
            return 0
        return int(pc.max(actions["max.seq"]).as_py() or 0)

    # ------------------------------------------------------------------ the move

    def begin(self, rows: pa.Table, replaced: list[str]) -> str:
        """Steps 1-3: commit ``rows`` to the archive, recording that
        the hot files ``replaced`` are to go. Returns the archive file's name."""
        appender = self._open()
        add = appender.write_file(rows, name_prefix="archive")
        _write_atomically(self.manifest, {"archive_file": add["path"], "replaced": replaced})
        version = appender.commit([{"add": add}], operation="WRITE")
        if version % CHECKPOINT_EVERY == 0:
            self._checkpoint()
        return add["path"]

    def finish(self) -> None:
        """Step 5: the hot journal committed; nothing is left to undo."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.manifest)

    def merge_small_files(self) -> int:
        """Rewrite the archive's small files as one once ``MERGE_AT`` of them pile up, in one
        commit (same rows: a crash before it leaves only an unreferenced file). Only between
        moves (no manifest): ``recover`` looks for a move's own file. Returns files merged."""
        if not self.exists() or os.path.exists(self.manifest):
            return 0
        table = retry_vacuum_race(lambda: DeltaTable(self.path))
        small = [
            (p, n) for p, n in zip(*_paths_and_sizes(table), strict=True) if n < SMALL_FILE_BYTES
        ]
        if len(small) < MERGE_AT:
            return 0
        rows = pa.concat_tables(
            [pq.read_table(os.path.join(self.path, p), schema=IB_REQUESTS_SCHEMA) for p, _ in small]
        )
        appender = self._open()
        add = appender.write_file(rows, name_prefix="archive")
        appender.commit(
            [{"add": add}, *[remove_action(p, n) for p, n in small]], operation="OPTIMIZE"
        )
        for name, _ in small:  # readers racing this retry (v6ray.storage.reader)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.path, name))
        return len(small)

    def recover(self, hot_files: set[str]) -> dict[str, Any] | None:
        """Undo a move a crash cut short before the hot journal's commit (``hot_files``:
        the data files the hot journal names now). Returns what was found, or None."""
        try:
            with open(self.manifest, encoding="utf-8") as source:
                manifest = json.load(source)
        except FileNotFoundError:
            return None
        except ValueError:  # not ours to parse (written atomically, so never torn)
            manifest = {}
        archive_file = manifest.get("archive_file")
        replaced = manifest.get("replaced") or []
        committed = hot_done = False
        if not replaced or not hot_files.isdisjoint(replaced):
            if archive_file and self.exists():
                table = retry_vacuum_race(lambda: DeltaTable(self.path))
                sizes = dict(zip(*_paths_and_sizes(table), strict=True))
                committed = archive_file in sizes
                if committed:
                    self._open().commit(
                        [remove_action(archive_file, sizes[archive_file])], operation="DELETE"
                    )
            if archive_file:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.path, archive_file))
        else:
            hot_done = True
        self.finish()
        return {"archive_file": archive_file, "rolled_back": committed, "completed": hot_done}

    # ------------------------------------------------------------------ internals

    def _open(self) -> LocalAppender:
        if self._appender is None:
            DeltaTable.create(
                self.path,
                schema=IB_REQUESTS_SCHEMA,
                mode="ignore",
                configuration=self.configuration,
            )
            self._appender = LocalAppender(self.path, stats_columns=("request_id", "seq"))
        return self._appender

    def _checkpoint(self) -> None:
        table = retry_vacuum_race(lambda: DeltaTable(self.path))
        remove_stale_files(self.path, table, min_age_seconds=self.stale_file_age)
        table.create_checkpoint()
        table.cleanup_metadata()


def _paths_and_sizes(table: DeltaTable) -> tuple[list[str], list[int]]:
    actions = pa.table(table.get_add_actions(flatten=True))
    return actions["path"].to_pylist(), actions["size_bytes"].to_pylist()


def remove_action(path: str, size: int) -> dict[str, Any]:
    """A Delta ``remove`` action for the data file ``path`` of ``size`` bytes."""
    return {
        "remove": {
            "path": path,
            "deletionTimestamp": int(time.time() * 1000),
            "dataChange": True,
            "extendedFileMetadata": True,
            "partitionValues": {},
            "size": size,
        }
    }


def _write_atomically(path: str, content: dict[str, Any]) -> None:
    staging = f"{path}.tmp"
    with open(staging, "w", encoding="utf-8") as sink:
        json.dump(content, sink)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(staging, path)
    fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
