"""How a result table is laid out on disk: partition columns derived from each row (pure).

Why: a writer's MERGE reads every file its keys could be in. Unpartitioned, with one file
per 50 ms flush and nightly compaction mixing days, that is every file of the table, so
each flush cost grew with the table's history. A partition column that is a function of
the row's *key* puts every version of a row in one partition, and lets the MERGE, the
nightly compaction and vacuum touch only the partitions of the rows at hand.

The partition columns are storage detail, not contract: ``TableSpec.schema`` stays what
readers get (``read_table`` drops them); ``stored_schema`` is what the Delta table holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from v6ray.pacing import ib_limits

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class PartitionColumn:
    """A column the table is partitioned by, computed from a batch in the table's schema.

    ``derive`` must depend only on key columns: then a key always lands in the same
    partition and a MERGE restricted to the batch's partitions still sees its old row.
    """

    name: str
    type: pa.DataType
    derive: Callable[[pa.Table], pa.Array]
    description: str


def bar_partition_day(rows: pa.Table) -> pa.Array:
    """Partition of each ``market_bars`` row: the UTC day of an intraday bar, the first
    day of the bar's year for bars of a day or longer.

    A day of 1-minute bars for a few dozen symbols is one well-sized file per day after
    compaction; daily bars by day would make 250 one-row-per-symbol partitions a year, so
    they share one partition per year. Depends on ``bar_size`` and ``timestamp`` only
    (both key columns)."""
    days = pc.cast(pc.floor_temporal(rows.column("timestamp"), unit="day"), pa.date32())
    years = pc.cast(pc.floor_temporal(rows.column("timestamp"), unit="year"), pa.date32())
    sizes = rows.column("bar_size")
    long_sizes = [size for size in pc.unique(sizes).to_pylist() if _is_long_bar(size)]
    long_bars = pc.fill_null(pc.is_in(sizes, value_set=pa.array(long_sizes, pa.string())), False)
    return pc.if_else(long_bars, years, days)


def _is_long_bar(bar_size: str | None) -> bool:
    try:
        return bar_size is not None and ib_limits.bar_seconds(bar_size) >= DAY_SECONDS
    except ValueError:  # a bar size IB does not know (an old row): keep it by day
        return False


def stored_schema(schema: pa.Schema, partitions: tuple[PartitionColumn, ...]) -> pa.Schema:
    """The Delta table's schema: the readers' columns, then the partition columns."""
    for column in partitions:
        schema = schema.append(pa.field(column.name, column.type))
    return schema


def with_partition_columns(rows: pa.Table, partitions: tuple[PartitionColumn, ...]) -> pa.Table:
    """``rows`` (in the spec's schema) plus their partition columns."""
    for column in partitions:
        rows = rows.append_column(
            pa.field(column.name, column.type), column.derive(rows).cast(column.type)
        )
    return rows


def without_partition_columns(rows: pa.Table, partitions: tuple[PartitionColumn, ...]) -> pa.Table:
    """What readers see: ``rows`` without the storage-only partition columns."""
    drop = [c.name for c in partitions if c.name in rows.column_names]
    return rows.drop_columns(drop) if drop else rows


def partition_values(rows: pa.Table, column: PartitionColumn) -> list[str]:
    """Distinct values of ``column`` in ``rows`` as Delta partition-filter strings."""
    values = pc.unique(rows.column(column.name)).to_pylist()
    return sorted(_partition_text(v) for v in values if v is not None)


def _partition_text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
