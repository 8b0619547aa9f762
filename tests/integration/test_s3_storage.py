"""Tables on a real S3-compatible server (moto's, started by the ``s3_server`` fixture)."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from v6ray.storage.location import DataRoot


def test_a_table_round_trips_through_the_s3_server(s3_data_dir):
    root = DataRoot.parse(s3_data_dir)
    location = root.join("probe")
    write_deltalake(location, pa.table({"a": [1, 2]}), storage_options=root.storage_options())
    write_deltalake(
        location, pa.table({"a": [3]}), mode="append", storage_options=root.storage_options()
    )
    table = DeltaTable(location, storage_options=root.storage_options())
    assert table.version() == 1
    assert sorted(table.to_pyarrow_table()["a"].to_pylist()) == [1, 2, 3]
