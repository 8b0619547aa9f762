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
reader never sees half an entry). A crash in between leaves an unreferenced data file,
which a full vacuum deletes (the journal runs one when it opens).
"""

from __future__ import annotations

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

# Commit entries and checkpoints (a cleaned-up log may hold only the latter).
_VERSIONED = re.compile(r"^(\d{20})\.(?:json|checkpoint\.(?:\d+\.\d+\.)?parquet)$")
log = logging.getLogger(__name__)
ENGINE = "v6ray"  # commitInfo.engineInfo: who wrote the commit


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

    def append(self, data: pa.Table) -> int:
        """Commit ``data`` as one new data file; returns the table version it created."""
        return self.commit([{"add": self.write_file(data)}], operation="WRITE")

    def write_file(self, data: pa.Table) -> dict[str, Any]:
        """Write ``data`` as a flushed data file; returns the ``add`` action naming it."""
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
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
        """Publish ``actions`` (add / remove) as the next version; returns that version."""
        commit_info = {
            "timestamp": int(time.time() * 1000),
            "operation": operation,
            "operationParameters": {"mode": "Append"} if operation == "WRITE" else {},
            "engineInfo": ENGINE,
        }
        lines = [json.dumps({"commitInfo": commit_info}, separators=(",", ":"))]
        lines += [json.dumps(action, separators=(",", ":")) for action in actions]
        return self._publish(("\n".join(lines) + "\n").encode())

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
                        # Another writer (deltalake's vacuum, say) committed it first.
                        self.version = max(version, latest_version(self.log_dir))
                        continue
                    self.version = version
                    break
        finally:
            os.unlink(staging)
        if self.fsync:
            try:
                _fsync_dir(self.log_dir)
            except OSError as exc:
                # The entry is published (readers see it) and its bytes are flushed: raising
                # now would make a retrying caller commit the same rows twice.
                log.error("fsync of %s failed after commit %d: %s", self.log_dir, version, exc)
        return version

    def _flush(self, sink: Any) -> None:
        sink.flush()
        if self.fsync:
            os.fsync(sink.fileno())


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
