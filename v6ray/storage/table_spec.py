"""``TableSpec``: what v6ray knows about one Delta table (pure; no table is opened here).

``key_columns`` is the table's uniqueness rule from DESIGN.md; writers merge on it so no
retry, crash or restart can leave two copies of a row. ``partitions`` is the table's layout
on disk (``layout``): columns derived from the key that the Delta table is partitioned by,
kept out of ``schema`` (what readers get). A request type's result table is declared in its
spec (``v6ray.requests.types``); ``v6ray.storage.schemas`` lists every table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from v6ray.storage.layout import PartitionColumn, stored_schema

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


def schema_of(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    """An Arrow schema from ``(name, type)`` pairs, in order."""
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])
