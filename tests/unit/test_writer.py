"""Writer merges are idempotent and never duplicate a key (no Ray: merge_rows in-process)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from v6ray.gateway.parsing import to_table
from v6ray.storage.maintenance import compact_table
from v6ray.storage.writer import dedupe_last, merge_rows

T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
KEYS = ("symbol", "bar_size", "what_to_show", "timestamp")


def bars(start: int, count: int, request_id: str, close: float = 1.5) -> pa.Table:
    return to_table("market_bars", [
        dict(request_id=request_id, symbol="SPY", bar_size="1 min", what_to_show="TRADES",
             timestamp=T0 + timedelta(minutes=start + i), open=1.0, high=2.0, low=0.5,
             close=close, volume=10.0)
        for i in range(count)
    ])


def read(data_dir: str, table: str) -> pa.Table:
    return DeltaTable(f"{data_dir}/{table}").to_pyarrow_table()


def test_first_write_creates_the_table_and_reports_version(tmp_path):
    result = merge_rows(str(tmp_path), "market_bars", bars(0, 10, "a"))
    assert result == {"table": "market_bars", "rows": 10, "delta_version": 1}
    assert read(str(tmp_path), "market_bars").num_rows == 10


def test_rewriting_the_same_rows_is_idempotent(tmp_path):
    for _ in range(3):
        merge_rows(str(tmp_path), "market_bars", bars(0, 10, "a"))
    assert read(str(tmp_path), "market_bars").num_rows == 10


def test_overlapping_loads_replace_bars(tmp_path):
    merge_rows(str(tmp_path), "market_bars", bars(0, 10, "a", close=1.0))
    merge_rows(str(tmp_path), "market_bars", bars(5, 10, "b", close=2.0))
    table = read(str(tmp_path), "market_bars").to_pylist()
    assert len(table) == 15
    latest = {r["timestamp"]: r["close"] for r in table}
    assert latest[T0 + timedelta(minutes=7)] == 2.0 and latest[T0] == 1.0


def test_duplicate_keys_in_one_batch_keep_the_last():
    batch = pa.concat_tables([bars(0, 3, "a"), bars(0, 3, "b")])
    out = dedupe_last(batch, KEYS)
    assert out.num_rows == 3 and set(out.column("request_id").to_pylist()) == {"b"}


def test_concurrent_writers_lose_no_commit_and_duplicate_no_key(tmp_path):
    errors = []

    def load(i: int) -> None:
        try:
            merge_rows(str(tmp_path), "market_bars", bars(i * 20, 50, f"r{i}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    table = read(str(tmp_path), "market_bars")
    stamps = table.column("timestamp").to_pylist()
    assert len(stamps) == len(set(stamps)) == 5 * 20 + 50


def test_snapshot_rows_are_unique_per_request_and_contract(tmp_path):
    row = dict(request_id="r", symbol="ES", contract_month="202503", con_id=1, bid=1.0,
               snapshot_time=T0)
    merge_rows(str(tmp_path), "futures_snapshots", to_table("futures_snapshots", [row]))
    merge_rows(str(tmp_path), "futures_snapshots", to_table("futures_snapshots", [row]))
    assert read(str(tmp_path), "futures_snapshots").num_rows == 1


def test_unknown_table_is_refused(tmp_path):
    with pytest.raises(ValueError):
        merge_rows(str(tmp_path), "../etc", bars(0, 1, "a"))


def test_compact_table_reduces_files(tmp_path):
    for i in range(4):
        merge_rows(str(tmp_path), "market_bars", bars(i * 10, 10, f"r{i}"))
    result = compact_table(str(tmp_path), "market_bars")
    assert result["files_after"] < result["files_before"]
    assert read(str(tmp_path), "market_bars").num_rows == 40
