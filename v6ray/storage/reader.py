"""Read v6ray's Delta tables as polars DataFrames (``v6ray.read_table``)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from v6ray import constants
from v6ray.errors import NoTables
from v6ray.queue.journal_api import latest_requests
from v6ray.service.settings import Settings
from v6ray.storage import location, migrations
from v6ray.storage.layout import without_partition_columns
from v6ray.storage.schemas import TABLES, requests_archive_path, table_path, table_spec

# A reader can load a table version whose files a compaction has just vacuumed (the queue
# vacuums with zero retention), or whose log entries its cleanup has just removed (delta-rs
# then raises DeltaError "File not found: .../_delta_log/...json", not an OSError); and a
# listing of the log taken while a writer adds entries can miss one (DeltaError "Expected
# contiguous commit files, but found gap"; directories are not listed in name order). Such
# a read is retried against a fresh listing, with backoff, for up to READ_RETRY_SECONDS: on
# a busy machine a slow read can lose several races in a row to a compacting queue.
READ_RETRY_SECONDS = 15.0
T = TypeVar("T")


def read_table(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pl.DataFrame:
    """The table ``name`` as a DataFrame; ``ib_requests`` gives one row per request.

    ``data_dir`` is a local path or an object-store URI (``s3://bucket/prefix``); its
    storage options come from this process's environment (``AWS_*``,
    ``V6RAY_STORAGE_OPTIONS``), ``storage_options`` adding to or overriding them.
    ``data_dir`` may be the root of a simulated data dir: its tables are in
    ``<data_dir>/simulated/`` and are read from there. A registered table that does not
    exist yet in a data dir holding other v6ray tables reads as an empty frame with its
    schema; a data dir with no v6ray tables at all (a typo, the wrong folder) raises
    ``NoTables`` naming where it looked. A name that is not registered raises
    ``UnknownTable``. A table an older v6ray wrote comes in the current schema
    (``migrations.upgrade_rows``, in memory; the next write migrates it on disk).
    """
    spec = table_spec(name)
    root = os.fspath(data_dir if data_dir is not None else Settings.from_env().data_path)
    options = location.storage_options_for(root, storage_options)
    tables_dir = tables_home(root, spec.name, options)
    path = table_path(tables_dir, spec.name)
    rows = _read_delta(path, options)
    if rows is None:
        rows = spec.schema.empty_table()
    elif migrations.needs_migration(spec.name, rows.column_names):
        rows = migrations.upgrade_rows(spec.name, rows, tables_dir, options)
    rows = without_partition_columns(rows, spec.partitions)  # storage detail, not contract
    frame = pl.DataFrame(rows)
    if spec.name == constants.REQUESTS_TABLE:
        return latest_requests(with_archived_requests(frame, tables_dir))
    return frame


def with_archived_requests(hot: pl.DataFrame, tables_dir: str) -> pl.DataFrame:
    """``hot`` (rows of ``ib_requests``, read already) plus the rows of its archive.

    The queue moves a request by committing it to the archive first and removing it from
    ``ib_requests`` after (``v6ray.queue.archive``); reading ``ib_requests`` before the
    archive therefore sees every request at least once, whenever the move happens. A
    request seen in both is the same final row (same ``seq``): ``latest_requests`` keeps one.
    """
    path = requests_archive_path(tables_dir)
    archived = _read_delta(path, location.storage_options_for(path))
    if archived is None or not archived.num_rows:
        return hot
    return pl.concat([hot, pl.DataFrame(archived).select(hot.columns)], how="vertical_relaxed")


def tables_home(root: str, name: str, storage_options: dict[str, str] | None = None) -> str:
    """The folder holding ``root``'s tables: ``root`` itself, or ``root/simulated`` when
    only that holds any (``v6ray up --simulate`` keeps its tables there); ``NoTables``
    when neither does. ``storage_options``: those of ``root`` (default: from the
    environment)."""
    if storage_options is None:
        storage_options = location.storage_options_for(root)

    def exists(path: str) -> bool:
        return DeltaTable.is_deltatable(path, storage_options=storage_options)

    if exists(table_path(root, name)):
        return root  # the common case costs one check
    simulated = location.join(root, constants.SIMULATED_DATA_SUBDIR)
    for candidate in (root, simulated):
        if any(exists(table_path(candidate, t)) for t in TABLES):
            return candidate
    raise NoTables(root, (root, simulated), tuple(TABLES))


def _read_delta(path: str, storage_options: dict[str, str]) -> pa.Table | None:
    if not DeltaTable.is_deltatable(path, storage_options=storage_options):
        return None
    return retry_vacuum_race(
        lambda: DeltaTable(path, storage_options=storage_options).to_pyarrow_table()
    )


def retry_vacuum_race(read: Callable[[], T], *, seconds: float = READ_RETRY_SECONDS) -> T:
    """``read()``, again (a fresh snapshot each time) when its files were vacuumed under it;
    the last error is raised once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while True:
        try:
            return read()
        except (FileNotFoundError, DeltaError):  # not e.g. PermissionError: that stays
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause * random.uniform(0.5, 1.0))  # jitter: readers do not march
            pause = min(pause * 2, 1.0)

