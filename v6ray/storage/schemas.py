"""Arrow schemas of v6ray's Delta tables and the table registry (pure).

``TABLES`` is the one list of tables: a name not in it is never used, and a table name is
never taken from user input as a path (``table_path`` only joins a registered name).
``key_columns`` is each table's uniqueness rule from DESIGN.md; writers merge on it so no
retry, crash or restart can leave two copies of a row. ``partitions`` is the table's layout
on disk (``layout``): columns derived from the key that the Delta table is partitioned by,
kept out of ``schema`` (what readers get).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa

from v6ray import constants
from v6ray.errors import UnknownTable
from v6ray.storage import location
from v6ray.storage.layout import PartitionColumn, bar_partition_day, stored_schema

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key_columns: tuple[str, ...]
    description: str
    partitions: tuple[PartitionColumn, ...] = ()

    @property
    def stored_schema(self) -> pa.Schema:
        """The Delta table's columns: ``schema`` then the partition columns."""
        return stored_schema(self.schema, self.partitions)

    @property
    def rows_belong_to_request(self) -> bool:
        """Keyed by request first: a request's rows are its own snapshot (options, futures,
        positions), not shared facts such as a bar that any load may write again."""
        return self.key_columns[0] == "request_id"

    @property
    def partition_by(self) -> list[str]:
        return [column.name for column in self.partitions]


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])


IB_REQUESTS_SCHEMA = _schema(
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

OPTION_SNAPSHOTS_SCHEMA = _schema(
    ("request_id", pa.string()),
    ("symbol", pa.string()),
    ("expiry", pa.date32()),
    ("strike", pa.float64()),
    ("right", pa.string()),
    ("bid", pa.float64()),
    ("ask", pa.float64()),
    ("last", pa.float64()),
    ("volume", pa.float64()),
    ("implied_vol", pa.float64()),
    ("delta", pa.float64()),
    ("gamma", pa.float64()),
    ("vega", pa.float64()),
    ("theta", pa.float64()),
    ("underlying_price", pa.float64()),
    ("snapshot_time", UTC_TIMESTAMP),
    ("con_id", pa.int64()),
    ("trading_class", pa.string()),
    ("exchange", pa.string()),
    ("multiplier", pa.float64()),
)

FUTURES_SNAPSHOTS_SCHEMA = _schema(
    ("request_id", pa.string()),
    ("symbol", pa.string()),
    ("contract_month", pa.string()),
    ("bid", pa.float64()),
    ("ask", pa.float64()),
    ("last", pa.float64()),
    ("volume", pa.float64()),
    ("snapshot_time", UTC_TIMESTAMP),
    ("con_id", pa.int64()),
    ("exchange", pa.string()),
    ("expiry", pa.date32()),
    ("multiplier", pa.float64()),
)

MARKET_BARS_SCHEMA = _schema(
    ("request_id", pa.string()),
    ("symbol", pa.string()),
    ("bar_size", pa.string()),
    ("what_to_show", pa.string()),
    ("timestamp", UTC_TIMESTAMP),
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("volume", pa.float64()),
    ("wap", pa.float64()),
    ("bar_count", pa.int64()),
    # Series identity (``v6ray.instruments.bar_series``): regular hours only or not, and
    # which instrument; never null (they are merge keys). A use_rth=false load and the
    # regular-hours bars, or ES 202512 and continuous ES, are different rows.
    ("use_rth", pa.bool_()),
    ("sec_type", pa.string()),
    ("exchange", pa.string()),
    ("contract_month", pa.string()),
    # The contract IB resolved the request to, when it was qualified (not for stocks on
    # SMART); for a continuous future that is the front month at fetch time, so it
    # describes the row but is not part of its identity.
    ("con_id", pa.int64()),
    ("local_symbol", pa.string()),
)

POSITIONS_SCHEMA = _schema(
    ("request_id", pa.string()),
    ("account", pa.string()),
    ("symbol", pa.string()),
    ("sec_type", pa.string()),
    ("con_id", pa.int64()),
    ("position", pa.float64()),
    ("avg_cost", pa.float64()),
    ("snapshot_time", UTC_TIMESTAMP),
)

DERIVED_STATISTICS_SCHEMA = _schema(
    ("symbol", pa.string()),
    ("date", pa.date32()),
    ("realized_vol_20d", pa.float64()),
    ("atr_14", pa.float64()),
    ("atm_iv", pa.float64()),
    ("iv_rank_252d", pa.float64()),
    ("put_call_volume_ratio", pa.float64()),
    ("computed_at", UTC_TIMESTAMP),
)

MARKET_BARS_PARTITION = PartitionColumn(
    "partition_day",
    pa.date32(),
    bar_partition_day,
    "UTC day of an intraday bar; first day of its year for bars of a day or longer",
)

MARKET_BARS_KEY = (
    "symbol", "sec_type", "exchange", "contract_month", "bar_size", "what_to_show", "use_rth",
    "timestamp",
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
        TableSpec(
            constants.OPTION_SNAPSHOTS_TABLE,
            OPTION_SNAPSHOTS_SCHEMA,
            ("request_id", "con_id"),
            "option quotes with implied vol and greeks, one row per request and contract",
        ),
        TableSpec(
            constants.FUTURES_SNAPSHOTS_TABLE,
            FUTURES_SNAPSHOTS_SCHEMA,
            ("request_id", "con_id"),
            "futures quotes, one row per request and contract",
        ),
        TableSpec(
            constants.MARKET_BARS_TABLE,
            MARKET_BARS_SCHEMA,
            MARKET_BARS_KEY,
            "historical OHLCV bars, one row per series (symbol, instrument, bar size, data "
            "type, regular hours or not) and bar start",
            partitions=(MARKET_BARS_PARTITION,),
        ),
        TableSpec(
            constants.POSITIONS_TABLE,
            POSITIONS_SCHEMA,
            ("request_id", "account", "con_id"),
            "account positions, one row per request, account and contract",
        ),
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
        raise UnknownTable(name) from None


def table_path(data_dir: str | os.PathLike[str], name: str) -> str:
    """Location of a registered table under ``data_dir`` (a folder, or a URI under an
    object-store root: ``location.join``); unknown names raise ``UnknownTable``."""
    return location.join(data_dir, table_spec(name).name)


def requests_archive_path(data_dir: str | os.PathLike[str]) -> str:
    """Location of ``ib_requests``' archive (same schema; part of that table for readers)."""
    return location.join(data_dir, constants.REQUESTS_ARCHIVE_TABLE)
