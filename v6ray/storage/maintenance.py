"""Housekeeping of result tables: optimize (compact), vacuum, checkpoint.

Small MERGE commits (one per writer flush) leave many small files; compaction rewrites them
into few large ones, vacuum deletes files no version needs any more, a checkpoint keeps
opening the table fast and lets old log entries go.

Two callers: ``v6ray compact`` (by hand, every partition) and the scheduler's nightly
``maintain_tables`` job (``maintain_tables`` below, as a Ray task: ``maintenance_task``),
which compacts only the partitions written lately, so its cost follows the day's work,
not the table's history. Unpartitioned tables are compacted whole: delta-rs leaves files
already at the target size alone, so that too rewrites mostly the recent small files.

Safe beside writers and readers: compaction commits a rewrite of the same rows (no key
gains a second row), and a writer whose MERGE read a file compaction removed gets a
commit conflict and retries (``writer.merge_rows``); a compaction that loses such a race is
retried here. Vacuum removes only files no version of the last ``retention_hours`` needs,
so a reader holding a recent snapshot keeps its files.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from v6ray import constants
from v6ray.backoff import backoff_delay
from v6ray.storage.location import storage_options_for
from v6ray.storage.schemas import TABLES, TableSpec, table_path, table_spec

log = logging.getLogger(__name__)

# Keep a week of old files by default so a reader time-travelling a little is not broken.
DEFAULT_RETENTION_HOURS = 168
# The nightly job compacts partitions that received files in this many days (a missed
# night or a long weekend is caught up; older partitions were compacted back then).
DEFAULT_RECENT_DAYS = 4
# Compacting a table the writers are merging into: a MERGE that rewrote a file the compaction
# read makes delta-rs refuse the compaction's commit ("a concurrent transaction deleted data
# this operation read"); the compaction is redone on the new version, as writers redo a MERGE.
COMPACT_ATTEMPTS = 8
COMPACT_RETRY_BASE_SECONDS = 0.1
COMPACT_RETRY_CAP_SECONDS = 2.0
# The request journal is compacted by the queue actor only (``v6ray compact`` asks it).
RESULT_TABLES = tuple(name for name in TABLES if name != constants.REQUESTS_TABLE)


def compact_table(
    data_dir: str,
    table: str,
    *,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    written_since: dt.datetime | None = None,
    after_step: Callable[[str], None] = lambda step: None,
) -> dict[str, Any]:
    """Optimize (compact), vacuum and checkpoint one table; returns what was done.

    ``written_since``: compact only the partitions holding a file added after it (all
    of an unpartitioned table); None compacts every partition. ``after_step`` is called
    with "compact", "vacuum", "checkpoint" as each is committed (tests check the table
    rules there).
    """
    spec = table_spec(table)
    started = time.monotonic()
    try:
        path = table_path(data_dir, spec.name)
        delta = DeltaTable(path, storage_options=storage_options_for(path))
    except TableNotFoundError:
        return {"table": table, "exists": False}
    version_before = delta.version()
    files_before = len(delta.file_uris())
    filters = _recent_partition_filters(delta, spec, written_since)
    metrics = _compact(delta, filters) if filters != [] else {}
    after_step("compact")
    # A fresh snapshot: files added since are in use. (A retention of 0, as tests use,
    # is only safe with no writer at work: a file a writer has written but not yet
    # committed is in no snapshot and would look stale.)
    delta.update_incremental()
    removed = delta.vacuum(
        retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
    )
    after_step("vacuum")
    delta.update_incremental()  # checkpoint the latest version, writers' commits included
    delta.create_checkpoint()
    delta.cleanup_metadata()  # log entries older than the table's log retention (30 days)
    after_step("checkpoint")
    return {
        "table": table,
        "exists": True,
        "version_before": version_before,
        "version_after": delta.version(),
        "files_before": files_before,
        "files_after": len(delta.file_uris()),
        "files_added": int(metrics.get("numFilesAdded", 0)),
        "files_removed": int(metrics.get("numFilesRemoved", 0)),
        "files_vacuumed": len(removed),
        "partitions_compacted": None if filters is None else len(filters),
        "seconds": round(time.monotonic() - started, 3),
    }


def _recent_partition_filters(
    delta: DeltaTable, spec: TableSpec, written_since: dt.datetime | None
) -> list[list[tuple[str, str, str]]] | None:
    """One deltalake partition filter per partition written since ``written_since``; None
    for "the whole table" (unpartitioned, or no cut-off); [] when nothing is recent."""
    if written_since is None or not spec.partition_by:
        return None
    # deltalake 1.x returns an arro3 table: pyarrow reads it through the Arrow C interface.
    actions = pa.table(delta.get_add_actions(flatten=True)).to_pydict()
    cutoff_ms = written_since.timestamp() * 1000
    names = spec.partition_by
    recent = {
        tuple(_text(actions[f"partition.{name}"][i]) for name in names)
        for i, modified in enumerate(actions["modification_time"])
        if _millis(modified) >= cutoff_ms
    }
    return [
        [(name, "=", value) for name, value in zip(names, values, strict=True)]
        for values in sorted(recent)
    ]


def _compact(delta: DeltaTable, filters: list | None) -> dict[str, int]:
    """``optimize.compact`` of each filter (or the whole table), redone on a lost race."""
    totals = {"numFilesAdded": 0, "numFilesRemoved": 0}
    for partition in filters if filters is not None else [None]:
        for attempt in range(1, COMPACT_ATTEMPTS + 1):
            try:
                delta.update_incremental()
                metrics = delta.optimize.compact(partition_filters=partition)
                break
            except (CommitFailedError, DeltaError) as exc:
                if attempt == COMPACT_ATTEMPTS:
                    raise
                log.info("compaction of %s lost a race (%s); again", partition, exc)
                time.sleep(
                    backoff_delay(
                        attempt, base=COMPACT_RETRY_BASE_SECONDS, cap=COMPACT_RETRY_CAP_SECONDS
                    )
                )
        for key in totals:
            totals[key] += int(metrics.get(key, 0))
    return totals


def _millis(value: Any) -> float:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp() * 1000
    return float(value)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def maintain_tables(
    data_dir: str,
    *,
    recent_days: int = DEFAULT_RECENT_DAYS,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The nightly maintenance: every result table, compacting only recent partitions.

    One table failing does not stop the others; its entry carries the error."""
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=recent_days)
    out = []
    for name in RESULT_TABLES:
        try:
            out.append(
                compact_table(data_dir, name, retention_hours=retention_hours, written_since=since)
            )
        except (DeltaError, OSError) as exc:
            log.warning("maintenance of %s failed: %s", name, exc)
            out.append({"table": name, "exists": True, "error": f"{type(exc).__name__}: {exc}"})
    return out


@functools.cache
def maintenance_task():
    """``maintain_tables`` as a Ray task (created lazily: importing this needs no Ray).

    Runs in a worker, not in the gateway or the scheduler: compaction is CPU and disk."""
    import ray

    return ray.remote(num_cpus=0.5, max_retries=1)(maintain_tables)
