"""Housekeeping of result tables for ``v6ray compact``: optimize, vacuum, checkpoint.

Small MERGE commits (one per writer flush) leave many small files; compaction rewrites them
into few large ones, vacuum deletes files no version needs any more, a checkpoint keeps
opening the table fast.
"""

from __future__ import annotations

import time
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from v6ray.storage.location import storage_options_for
from v6ray.storage.schemas import TABLES, table_path, table_spec

# Keep a week of old files by default so a reader time-travelling a little is not broken.
DEFAULT_RETENTION_HOURS = 168


def compact_table(
    data_dir: str, table: str, *, retention_hours: int = DEFAULT_RETENTION_HOURS
) -> dict[str, Any]:
    """Optimize (compact), vacuum and checkpoint one table; returns what was done."""
    spec = table_spec(table)
    started = time.monotonic()
    try:
        path = table_path(data_dir, spec.name)
        delta = DeltaTable(path, storage_options=storage_options_for(path))
    except TableNotFoundError:
        return {"table": table, "exists": False}
    version_before = delta.version()
    files_before = len(delta.file_uris())
    metrics = delta.optimize.compact()
    removed = delta.vacuum(
        retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
    )
    delta.create_checkpoint()
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
        "seconds": round(time.monotonic() - started, 3),
    }


def compact_all(data_dir: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every registered table that exists under ``data_dir``."""
    return [compact_table(data_dir, name, **kwargs) for name in TABLES]
