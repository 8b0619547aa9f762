"""Tables written by an older v6ray, brought to the current schema in place.

When: the writer migrates a table the first time it opens one whose stored schema lacks
columns of its spec (so the first write after an upgrade does it, whoever writes: the
gateway's writer tasks, derive-stats); ``read_table`` applies the same upgrade in memory,
so readers see the current columns even before that first write.

What: ``market_bars`` gained its series identity (use_rth, sec_type, exchange,
contract_month) and the contract columns (con_id, local_symbol). An old row's identity is
that of the request that last wrote it (its parameters in ``ib_requests``, joined on
request_id: the old key let the last writer's bar replace any other, so that request
says which series the surviving bar belongs to). A row whose request is no longer in
``ib_requests`` gets the defaults (regular hours, the symbol's default instrument); con_id
and local_symbol stay null (unknown). Columns no rule fills are null.

Layout: a table written before its spec had ``partitions`` (``layout``), e.g. an
unpartitioned ``market_bars``, is rewritten partitioned by the same commit; its rows and
their keys do not change, only the files they sit in.

How: one Delta commit that overwrites the table with the new schema, based on the version
it read. Readers see the old table or the new one, never a mix; a writer that migrated
from the same old version in parallel gets a commit conflict ("metadata changed") and its
retry finds the table already migrated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from v6ray import constants
from v6ray.requests.instruments import bar_series
from v6ray.storage.layout import with_partition_columns
from v6ray.storage.location import storage_options_for
from v6ray.storage.schemas import conform, requests_archive_path, table_path, table_spec

log = logging.getLogger(__name__)

Filler = Callable[[pa.Table, str, "dict[str, str] | None"], pa.Table]


def stored_columns(delta: DeltaTable) -> list[str]:
    return [field.name for field in delta.schema().fields]


def needs_migration(name: str, columns: list[str]) -> bool:
    """True when a stored table of ``name`` lacks a column its spec has."""
    return not set(table_spec(name).schema.names) <= set(columns)


def needs_relayout(name: str, delta: DeltaTable) -> bool:
    """True when the stored table is not partitioned as the spec of ``name`` says."""
    return list(delta.metadata().partition_columns) != table_spec(name).partition_by


def upgrade_rows(
    name: str, rows: pa.Table, data_dir: str, storage_options: dict[str, str] | None = None
) -> pa.Table:
    """``rows`` of an older ``name`` table in the current schema, new columns filled.

    ``storage_options``: those of ``data_dir`` (default: from the environment)."""
    fill = _FILLERS.get(name)
    if fill is not None:
        rows = fill(rows, data_dir, storage_options)
    return conform(rows, table_spec(name).schema)


def migrate(data_dir: str, name: str, delta: DeltaTable) -> DeltaTable:
    """Rewrite ``delta`` (a snapshot of table ``name``) in the current schema; one commit.

    A concurrent migration of the same snapshot makes this raise ``CommitFailedError``
    (the caller re-opens the table and finds it migrated).
    """
    before = delta.version()
    spec = table_spec(name)
    options = storage_options_for(data_dir)
    rows = upgrade_rows(name, delta.to_pyarrow_table(), data_dir, options)
    rows = with_partition_columns(rows, spec.partitions)
    # Passing the snapshot (not the path) bases the commit on the version read, so a
    # commit that landed meanwhile is a conflict instead of being overwritten.
    write_deltalake(
        delta, rows, mode="overwrite", schema_mode="overwrite",
        partition_by=spec.partition_by or None,
    )
    log.warning("migrated %s (version %d, %d rows) to the current schema", name, before,
                rows.num_rows)
    return DeltaTable(table_path(data_dir, name), storage_options=options)


# --------------------------------------------------------------------------- market_bars


def _fill_bar_identity(
    rows: pa.Table, data_dir: str, storage_options: dict[str, str] | None
) -> pa.Table:
    """Series identity of old ``market_bars`` rows from the requests that wrote them."""
    identity = ("use_rth", "sec_type", "exchange", "contract_month")
    frame = pl.DataFrame(rows)
    if frame.is_empty() or set(identity) <= set(frame.columns):
        return rows
    parameters = _request_parameters(data_dir, storage_options)
    writers = frame.select(
        pl.col("request_id").fill_null("").alias("_rid"), "symbol"
    ).unique()
    filled = pl.DataFrame(
        [
            {"_rid": rid, "symbol": symbol, **bar_series(symbol, parameters.get(rid, {}))}
            for rid, symbol in writers.iter_rows()
        ],
        schema={"_rid": pl.String, "symbol": pl.String, "use_rth": pl.Boolean,
                "sec_type": pl.String, "exchange": pl.String, "contract_month": pl.String},
    )
    keep = [c for c in frame.columns if c not in identity]
    out = (
        frame.select(keep)
        .with_columns(pl.col("request_id").fill_null("").alias("_rid"))
        .join(filled, on=["_rid", "symbol"], how="left", maintain_order="left")
        .drop("_rid")
    )
    return out.to_arrow()


def _request_parameters(
    data_dir: str, storage_options: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """request_id → parameters of every request in ``ib_requests`` and its archive ({} when
    there is none).

    Parameters never change over a request's life, so any journal row of it will do.
    """
    columns = ["request_id", "parameters"]
    try:
        if storage_options is None:
            storage_options = storage_options_for(data_dir)
        journal = DeltaTable(
            table_path(data_dir, constants.REQUESTS_TABLE), storage_options=storage_options
        )
        table = journal.to_pyarrow_table(columns=columns)
    except (TableNotFoundError, DeltaError, OSError) as exc:
        log.warning("no ib_requests to migrate from (%s): old bars get default identity", exc)
        return {}
    archive = requests_archive_path(data_dir)
    # old bars were mostly written by old requests
    if DeltaTable.is_deltatable(archive, storage_options=storage_options):
        archived = DeltaTable(archive, storage_options=storage_options).to_pyarrow_table(
            columns=columns
        )
        table = pa.concat_tables([table, archived])
    out: dict[str, dict[str, Any]] = {}
    for rid, text in zip(table.column("request_id").to_pylist(),
                         table.column("parameters").to_pylist(), strict=True):
        if rid in out or not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[rid] = value
    return out


_FILLERS: dict[str, Filler] = {constants.MARKET_BARS_TABLE: _fill_bar_identity}
