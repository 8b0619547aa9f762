"""Writer merges are idempotent and never duplicate a key (no Ray: merge_rows in-process)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from tests.helpers import market_bars
from v6ray.errors import StorageError
from v6ray.gateway.parsing import to_table
from v6ray.requests.instruments import bar_series
from v6ray.storage.maintenance import compact_table
from v6ray.storage.schemas import TABLES
from v6ray.storage.writer import dedupe_last, merge_rows

T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
KEYS = TABLES["market_bars"].key_columns


def bars(start: int, count: int, request_id: str, close: float = 1.5,
         **parameters: object) -> pa.Table:
    """``count`` 1-min SPY bars from T0 + ``start`` min, of the series ``parameters`` mean."""
    return market_bars(T0 + timedelta(minutes=start), count, request_id=request_id,
                       close=close, **parameters)

def read(data_dir: str, table: str) -> pa.Table:
    return DeltaTable(f"{data_dir}/{table}").to_pyarrow_table()


def test_first_write_creates_the_table_and_reports_version(tmp_path):
    result = merge_rows(str(tmp_path), "market_bars", bars(0, 10, "a"))
    assert result == {"table": "market_bars", "rows": 10, "delta_version": 1, "conflicts": 0}
    assert read(str(tmp_path), "market_bars").num_rows == 10


def options(request_id: str, *con_ids: int) -> pa.Table:
    return to_table("option_snapshots", [
        {"request_id": request_id, "symbol": "SPY", "con_id": con_id, "strike": 400.0 + con_id,
         "right": "C", "snapshot_time": T0} for con_id in con_ids])


def test_a_replacing_commit_leaves_exactly_the_retried_requests_new_snapshot(tmp_path):
    """A retry's option chain can hold other strikes than the attempt that committed before
    it: the request's rows become the new snapshot, not the union; other requests keep theirs."""
    data_dir = str(tmp_path)
    merge_rows(data_dir, "option_snapshots", options("first", 1, 2, 3))
    merge_rows(data_dir, "option_snapshots", options("other", 1, 2))
    merge_rows(data_dir, "option_snapshots", options("first", 2, 4), replace_requests=["first"])
    rows = read(data_dir, "option_snapshots").to_pylist()
    assert sorted((r["request_id"], r["con_id"]) for r in rows) == [
        ("first", 2), ("first", 4), ("other", 1), ("other", 2)]
    # Without replace_requests the same write keeps the earlier rows (the old union).
    merge_rows(data_dir, "option_snapshots", options("other", 3))
    assert len(read(data_dir, "option_snapshots")) == 5


def test_only_tables_keyed_by_request_can_be_replaced(tmp_path):
    with pytest.raises(StorageError, match="market_bars.*not keyed by request"):
        merge_rows(str(tmp_path), "market_bars", bars(0, 2, "a"), replace_requests=["a"])
    with pytest.raises(TableNotFoundError):  # refused before anything was written
        DeltaTable(f"{tmp_path}/market_bars")


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


def test_bars_of_different_series_at_one_time_both_survive(tmp_path):
    """use_rth=false bars must not replace the regular-hours bars derive-stats reads, nor a
    futures month the continuous series; re-fetching one series replaces only its bars."""
    data_dir = str(tmp_path)
    merge_rows(data_dir, "market_bars", bars(0, 3, "rth", close=1.0, use_rth=True))
    merge_rows(data_dir, "market_bars", bars(0, 3, "eth", close=2.0, use_rth=False))
    merge_rows(data_dir, "market_bars", bars(0, 3, "arca", close=3.0, exchange="ARCA"))
    rows = read(data_dir, "market_bars").to_pylist()
    assert len(rows) == 9
    assert {(r["use_rth"], r["exchange"]): r["request_id"] for r in rows} == {
        (True, "SMART"): "rth", (False, "SMART"): "eth", (True, "ARCA"): "arca"}
    merge_rows(data_dir, "market_bars", bars(0, 3, "eth2", close=4.0, use_rth=False))
    rows = read(data_dir, "market_bars").to_pylist()
    assert len(rows) == 9
    assert {r["request_id"]: r["close"] for r in rows} == {"rth": 1.0, "eth2": 4.0, "arca": 3.0}


def test_a_futures_month_does_not_replace_the_continuous_series(tmp_path):
    def es(request_id: str, close: float, **parameters: object) -> pa.Table:
        series = {"symbol": "ES", "bar_size": "1 day", "what_to_show": "TRADES",
                  **bar_series("ES", parameters)}
        return to_table("market_bars", [dict(request_id=request_id, **series, timestamp=T0,
                                             open=1.0, high=2.0, low=0.5, close=close)])

    merge_rows(str(tmp_path), "market_bars", es("cont", 1.0))
    merge_rows(str(tmp_path), "market_bars", es("dec", 2.0, contract_month="202512"))
    merge_rows(str(tmp_path), "market_bars", es("mar", 3.0, contract_month="202603"))
    merge_rows(str(tmp_path), "market_bars", es("cont2", 4.0))  # same series: replaces
    rows = read(str(tmp_path), "market_bars").to_pylist()
    assert sorted((r["sec_type"], r["contract_month"], r["close"]) for r in rows) == [
        ("CONTFUT", "", 4.0), ("FUT", "202512", 2.0), ("FUT", "202603", 3.0)]


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


def test_a_result_table_takes_a_checkpoint_every_ten_commits(tmp_path):
    """Each MERGE opens the table and replays the log since the last checkpoint: the
    writers' many small commits must not leave a hundred of them to replay (Delta's default)."""
    for commit in range(12):
        merge_rows(str(tmp_path), "market_bars", bars(commit, 1, f"r{commit}"))
    log = tmp_path / "market_bars" / "_delta_log"
    [checkpoint] = [int(p.name.split(".")[0]) for p in log.glob("*.checkpoint.parquet")]
    commits = [int(p.stem) for p in log.glob("*.json")]
    assert max(commits) == 12 and 12 - checkpoint < 10  # what a reopen replays
    assert DeltaTable(str(tmp_path / "market_bars")).metadata().configuration == {
        "delta.checkpointInterval": "10"}
