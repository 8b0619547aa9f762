"""market_bars is partitioned by bar day, so a MERGE reads only the files its bars can be in;
an unpartitioned table an older v6ray wrote is rewritten partitioned on its first write."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from deltalake import DeltaTable

from tests.helpers import market_bars
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import TABLES
from v6ray.storage.writer import merge_rows

T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
SPEC = TABLES["market_bars"]


def day_bars(
    day: int,
    symbol: str = "SPY",
    bar_size: str = "1 min",
    count: int = 30,
    close: float = 1.0,
    request_id: str = "r",
) -> pa.Table:
    return market_bars(T0 + timedelta(days=day), count, symbol=symbol, bar_size=bar_size,
                       close=close, request_id=request_id)

def bars_table(data_dir: str) -> DeltaTable:
    return DeltaTable(f"{data_dir}/market_bars")


def last_merge_metrics(data_dir: str) -> dict:
    return bars_table(data_dir).history(1)[0]["operationMetrics"]


def test_a_merge_of_one_days_bars_reads_only_that_days_files(tmp_path):
    data_dir = str(tmp_path)
    for day in range(6):
        for symbol in ("SPY", "QQQ"):
            merge_rows(data_dir, "market_bars", day_bars(day, symbol))
    files = len(bars_table(data_dir).file_uris())

    merge_rows(data_dir, "market_bars", day_bars(3, "SPY", close=2.0))  # a refresh of day 3
    metrics = last_merge_metrics(data_dir)
    assert metrics["num_target_files_scanned"] == 1  # day 3's SPY file; QQQ's by its stats
    assert metrics["num_target_files_skipped_during_scan"] == files - 1
    assert metrics["num_target_rows_updated"] == 30

    merge_rows(data_dir, "market_bars", day_bars(6, "SPY"))  # a new day reads no file at all
    assert last_merge_metrics(data_dir)["num_target_files_scanned"] == 0

    frame = read_table("market_bars", data_dir)
    assert frame.height == 7 * 30 + 6 * 30
    assert frame.select(list(SPEC.key_columns)).is_unique().all()
    assert frame.filter(frame["close"] == 2.0).height == 30


def test_intraday_bars_partition_by_day_and_daily_bars_by_year(tmp_path):
    data_dir = str(tmp_path)
    merge_rows(data_dir, "market_bars", day_bars(0, count=3))
    merge_rows(data_dir, "market_bars", day_bars(0, bar_size="1 day", count=400))
    delta = bars_table(data_dir)
    assert delta.metadata().partition_columns == ["partition_day"]
    stored = delta.to_pyarrow_table()
    minute = stored.filter(pa.compute.equal(stored["bar_size"], "1 min"))
    daily = stored.filter(pa.compute.equal(stored["bar_size"], "1 day"))
    assert set(minute["partition_day"].to_pylist()) == {date(2025, 1, 2)}
    # 400 daily bars span two years: two partitions, not 400.
    assert set(daily["partition_day"].to_pylist()) == {date(2025, 1, 1), date(2026, 1, 1)}


def test_read_table_keeps_the_contract_columns_without_the_partition_column(tmp_path):
    merge_rows(str(tmp_path), "market_bars", day_bars(0))
    assert read_table("market_bars", str(tmp_path)).columns == SPEC.schema.names


def test_an_unpartitioned_table_of_an_older_v6ray_is_rewritten_partitioned(tmp_path):
    data_dir = str(tmp_path)
    old = pa.concat_tables([day_bars(day, close=1.0) for day in range(3)])
    DeltaTable.create(f"{data_dir}/market_bars", SPEC.schema)  # no partitions, as before
    bars_table(data_dir).merge(
        old,
        " AND ".join(f"t.`{k}` = s.`{k}`" for k in SPEC.key_columns),
        source_alias="s",
        target_alias="t",
    ).when_not_matched_insert_all().execute()
    assert read_table("market_bars", data_dir).height == 90  # readable before the rewrite

    # The first write after the upgrade overlaps old bars: they are replaced, not doubled.
    merge_rows(data_dir, "market_bars", day_bars(2, close=3.0, count=40))
    assert bars_table(data_dir).metadata().partition_columns == ["partition_day"]
    frame = read_table("market_bars", data_dir)
    assert frame.columns == SPEC.schema.names
    assert frame.height == 2 * 30 + 40
    assert frame.select(list(SPEC.key_columns)).is_unique().all()
    assert frame.filter(frame["close"] == 3.0).height == 40
