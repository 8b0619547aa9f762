"""Blind appends to a Delta table on local disk, without delta-rs's commit machinery.

Why: the queue journals every state change before it acknowledges it, so the cost of one
commit bounds its latency. ``write_deltalake`` spends ~10 ms of CPU (and 30+ ms of wall
time on a busy machine) per append, whatever its size; writing the parquet file with
pyarrow and the commit entry by hand costs ~1 ms. For a blind append to a table whose
protocol needs no writer features (reader 1 / writer 2, no invariants, not append-only
checks, no partitions) the Delta protocol asks exactly that: a data file, then a new
``_delta_log/<version>.json`` holding its ``add`` action, created only if absent.

Readers (delta-rs, ``v6ray.read_table``), checkpoints and vacuums keep using deltalake;
they see ordinary commits. A hand-built commit may also remove files (the journal's
compaction publishes its rewrite through ``commit``).

Crash safety: the data file is written and flushed before the entry that adds it; the
entry is written to a temporary file, flushed, then hard-linked to its final name, which
fails if that version exists (put-if-absent: a racing writer cannot be overwritten, and a
reader never sees half an entry). A crash in between leaves an unreferenced data file or a
staging entry; ``remove_stale_files`` deletes those once they are old enough that no live
writer can still be about to commit them.

Rows are checked against the table's schema before anything is written, and again when
another writer's commits (which may change the schema) are found on the way: a blind
append of rows the table cannot read back would be accepted by the file system and lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema

from v6ray.errors import SchemaMismatch

# Commit entries and checkpoints (a cleaned-up log may hold only the latter).
_VERSIONED = re.compile(r"^(\d{20})\.(?:json|checkpoint\.(?:\d+\.\d+\.)?parquet)$")
# Commit entries being staged: ours, and delta-rs's own (``_commit_<uuid>.json.tmp``).
_STAGING = re.compile(r"^(?:\.v6ray-[0-9a-f]+|_commit_[0-9a-f-]+)\.json\.tmp$")
log = logging.getLogger(__name__)
ENGINE = "v6ray"  # commitInfo.engineInfo: who wrote the commit


class CommitConflict(Exception):
    """A commit was refused because another writer changed the table; nothing committed,
    the rows may be written again (they are checked against the new schema then).

    Internal to the journal's writer: callers see the ``StorageError`` the group commit
    turns every failed append into, so it is not in errors.py."""


class LocalAppender:
    """Appends Arrow tables to the Delta table at ``path`` (which must exist), and publishes
    other hand-built commits (the journal's compaction) through the same version counter."""

    def __init__(
        self, path: str, *, stats_columns: tuple[str, ...] = (), fsync: bool = True
    ) -> None:
        self.path = path
        self.log_dir = os.path.join(path, "_delta_log")
        # Columns whose min/max go into the entry: readers skip files by them.
        self.stats_columns = stats_columns
        self.fsync = fsync
        # Appends and a compaction publish from different threads: one version at a time.
        self._lock = threading.Lock()
        self.version = latest_version(self.log_dir)
        self._schema = DeltaTable(path).schema()
        self._fits: pa.Schema | None = None  # the last Arrow schema found to fit (fast path)

    def append(self, data: pa.Table) -> int:
        """Commit ``data`` as one new data file; returns the table version it created."""
        return self.commit([{"add": self.write_file(data)}], operation="WRITE")

    def write_file(self, data: pa.Table, *, name_prefix: str = "part-00000") -> dict[str, Any]:
        """Write ``data`` as a flushed data file; returns the ``add`` action naming it.

        ``name_prefix`` starts the file's name (the journal tells its tiers apart by it).
        ``SchemaMismatch`` (nothing written) if the rows do not fit the table's schema.
        """
        self._check_schema(data)
        name = f"{name_prefix}-{uuid.uuid4()}-c000.snappy.parquet"
        file_path = os.path.join(self.path, name)
        with open(file_path, "wb") as sink:
            pq.write_table(data, sink, compression="snappy")
            self._flush(sink)
        return {
            "path": name,
            "partitionValues": {},
            "size": os.path.getsize(file_path),
            "modificationTime": int(time.time() * 1000),
            "dataChange": True,
            "stats": json.dumps(self._stats(data), separators=(",", ":")),
        }

    def commit(self, actions: list[dict[str, Any]], *, operation: str) -> int:
        """Publish ``actions`` (add / remove) as the next version; returns that version.

        The data files ``actions`` add are deleted again if the commit is refused.
        """
        commit_info = {
            "timestamp": int(time.time() * 1000),
            "operation": operation,
            "operationParameters": {"mode": "Append"} if operation == "WRITE" else {},
            "engineInfo": ENGINE,
        }
        lines = [json.dumps({"commitInfo": commit_info}, separators=(",", ":"))]
        lines += [json.dumps(action, separators=(",", ":")) for action in actions]
        try:
            return self._publish(("\n".join(lines) + "\n").encode())
        except CommitConflict:
            for action in actions:
                if "add" in action:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.path, action["add"]["path"]))
            raise

    def refresh_version(self) -> int:
        """Catch up with versions other writers committed (deltalake's vacuum commits)."""
        with self._lock:
            self.version = max(self.version, latest_version(self.log_dir))
            return self.version

    def _stats(self, data: pa.Table) -> dict[str, Any]:
        stats: dict[str, Any] = {"numRecords": data.num_rows}
        if data.num_rows and self.stats_columns:
            lows, highs = {}, {}
            for column in self.stats_columns:
                bounds = pc.min_max(data[column]).as_py()
                if bounds["min"] is not None:
                    lows[column], highs[column] = bounds["min"], bounds["max"]
            stats["minValues"], stats["maxValues"] = lows, highs
        return stats

    def _publish(self, entry: bytes) -> int:
        """Write ``entry`` as the next version; on a lost race, as the one after."""
        staging = os.path.join(self.log_dir, f".v6ray-{uuid.uuid4().hex}.json.tmp")
        with open(staging, "wb") as sink:
            sink.write(entry)
            self._flush(sink)
        try:
            with self._lock:
                while True:
                    version = self.version + 1
                    try:
                        os.link(staging, os.path.join(self.log_dir, f"{version:020d}.json"))
                    except FileExistsError:
                        # Another writer (deltalake's vacuum, say) committed it first; a
                        # blind append goes after it unless it changed the table's schema.
                        newest = max(version, latest_version(self.log_dir))
                        changed = self._schema_changed(version, newest)
                        self.version = newest
                        if changed:
                            self._schema, self._fits = DeltaTable(self.path).schema(), None
                            raise CommitConflict(
                                f"another writer changed the table's metadata before "
                                f"version {newest + 1}; write the rows again"
                            ) from None
                        continue
                    self.version = version
                    break
        finally:
            try:
                os.unlink(staging)
            except OSError as exc:  # the commit stands; remove_stale_files deletes it later
                log.warning("could not remove %s: %s", staging, exc)
        if self.fsync:
            try:
                _fsync_dir(self.log_dir)
            except OSError as exc:
                # The entry is published (readers see it) and its bytes are flushed: raising
                # now would make a retrying caller commit the same rows twice.
                log.error("fsync of %s failed after commit %d: %s", self.log_dir, version, exc)
        return version

    def _check_schema(self, data: pa.Table) -> None:
        if self._fits is not None and data.schema.equals(self._fits):
            problems = _null_problems(self._schema, data)  # types known to fit
        else:
            problems = schema_problems(self._schema, data)
        if problems:
            raise SchemaMismatch(os.path.basename(self.path), "; ".join(problems))
        self._fits = data.schema

    def _schema_changed(self, first: int, last: int) -> bool:
        """Whether a commit in versions ``first``..``last`` changed the table's metadata."""
        for version in range(first, last + 1):
            try:
                with open(os.path.join(self.log_dir, f"{version:020d}.json"), "rb") as entry:
                    if any(json.loads(line).keys() & {"metaData", "protocol"}
                           for line in entry if line.strip()):
                        return True
            except FileNotFoundError:
                return True  # cleaned up behind a checkpoint: read the schema again
        return False

    def _flush(self, sink: Any) -> None:
        sink.flush()
        if self.fsync:
            os.fsync(sink.fileno())


def schema_problems(table_schema: Schema, data: pa.Table | pa.Schema) -> list[str]:
    """What keeps ``data`` from being appended to a table of ``table_schema`` (none: fits).

    Compared as Delta types (Arrow's string and large_string are both Delta's string):
    the same columns, each of the same type; no nulls where the table forbids them.
    """
    arrow_schema = data if isinstance(data, pa.Schema) else data.schema
    try:
        given = {f.name: f for f in Schema.from_arrow(arrow_schema).fields}
    except Exception as exc:  # an Arrow type Delta has no counterpart for
        return [f"rows have no Delta schema ({exc})"]
    wanted = {f.name: f for f in table_schema.fields}
    problems = [f"column {name!r} is missing" for name in wanted if name not in given]
    problems += [f"column {name!r} is not in the table" for name in given if name not in wanted]
    problems += [
        f"column {name!r} is {_type_name(given[name].type)}, the table has "
        f"{_type_name(field.type)}"
        for name, field in wanted.items() if name in given and given[name].type != field.type
    ]
    if isinstance(data, pa.Table) and not problems:
        problems = _null_problems(table_schema, data)
    return problems


def _type_name(delta_type: Any) -> str:
    name = getattr(delta_type, "type", None)  # a primitive type: its Delta name
    return name if isinstance(name, str) else str(delta_type)


def _null_problems(table_schema: Schema, data: pa.Table) -> list[str]:
    return [
        f"column {field.name!r} holds nulls, the table forbids them"
        for field in table_schema.fields
        if not field.nullable and data[field.name].null_count
    ]


def remove_stale_files(path: str, table: DeltaTable, *, min_age_seconds: float) -> list[str]:
    """Delete what crashed writers left behind in the table at ``path`` (``table`` is it,
    opened): data files no commit names and staging entries, each only once older than
    ``min_age_seconds`` (a younger one may belong to a writer about to commit it).
    Returns the names deleted, relative to the table."""
    cutoff = time.time() - min_age_seconds
    unreferenced = table.vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=True, full=True
    )
    log_dir = os.path.join(path, "_delta_log")
    staged = [os.path.join("_delta_log", n) for n in os.listdir(log_dir) if _STAGING.match(n)]
    removed = []
    for name in [*unreferenced, *staged]:
        full = os.path.join(path, name)
        try:
            if os.stat(full).st_mtime >= cutoff:
                continue
            os.remove(full)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def latest_version(log_dir: str) -> int:
    """The newest committed version in ``log_dir`` (-1 for none)."""
    versions = [int(m.group(1)) for m in map(_VERSIONED.match, os.listdir(log_dir)) if m]
    return max(versions, default=-1)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
