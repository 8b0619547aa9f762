"""The table registry (pure): ``TABLES`` is the one list of v6ray's Delta tables.

A name not in it is never used, and a table name is never taken from user input as a path
(``table_path`` only joins a registered name). The queue's journal and the derived
statistics are declared here; each request type's result table is declared in its spec
(``v6ray.requests.types``). What a ``TableSpec`` holds: ``v6ray.storage.table_spec``.
"""

from __future__ import annotations

import os

import pyarrow as pa

from v6ray import constants
from v6ray.errors import UnknownTable
from v6ray.requests.registry import SPECS
from v6ray.storage import location
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

IB_REQUESTS_SCHEMA = schema_of(
    ("request_id", pa.string()),
    ("request_type", pa.string()),
    ("symbol", pa.string()),
    ("priority", pa.int32()),
    ("status", pa.string()),
    ("parameters", pa.string()),
    ("result_table", pa.string()),
    ("created_at", UTC_TIMESTAMP),
    ("updated_at", UTC_TIMESTAMP),
    ("attempts", pa.int32()),
    ("error_message", pa.string()),
    ("result_data", pa.string()),
    # Journal bookkeeping: ``seq`` orders every state change; the latest row per
    # request_id is its state. The rest is queue scheduling state kept for recovery.
    ("seq", pa.int64()),
    ("not_before", UTC_TIMESTAMP),
    ("lease_owner", pa.string()),
    ("lease_expires_at", UTC_TIMESTAMP),
)

DERIVED_STATISTICS_SCHEMA = schema_of(
    ("symbol", pa.string()),
    ("date", pa.date32()),
    ("realized_vol_20d", pa.float64()),
    ("atr_14", pa.float64()),
    ("atm_iv", pa.float64()),
    ("iv_rank_252d", pa.float64()),
    ("put_call_volume_ratio", pa.float64()),
    ("computed_at", UTC_TIMESTAMP),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            constants.REQUESTS_TABLE,
            IB_REQUESTS_SCHEMA,
            ("request_id",),
            "every IB request and its latest state (journal of the request queue)",
        ),
        # Each request type's result table, declared in its spec.
        *(request_spec.table for request_spec in SPECS.values()),
        TableSpec(
            constants.DERIVED_STATISTICS_TABLE,
            DERIVED_STATISTICS_SCHEMA,
            ("symbol", "date"),
            "daily statistics derived from bars and option snapshots",
        ),
    )
}


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of ``schema`` in its order and types; absent columns become nulls."""
    columns = []
    for field in schema:
        if field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(rows.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except (KeyError, TypeError):
        raise UnknownTable(name, tuple(TABLES)) from None


def table_path(data_dir: str | os.PathLike[str], name: str) -> str:
    """Location of a registered table under ``data_dir`` (a folder, or a URI under an
    object-store root: ``location.join``); unknown names raise ``UnknownTable``."""
    return location.join(data_dir, table_spec(name).name)


def requests_archive_path(data_dir: str | os.PathLike[str]) -> str:
    """Location of ``ib_requests``' archive (same schema; part of that table for readers)."""
    return location.join(data_dir, constants.REQUESTS_ARCHIVE_TABLE)
