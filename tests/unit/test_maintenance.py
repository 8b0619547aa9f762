"""Result-table maintenance (compact, vacuum, checkpoint) keeps DESIGN.md's table rules after
every step, compacts only recently written partitions, and leaves readers and writers working
while it runs (no Ray: the functions the scheduler's Ray task calls)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from tests.helpers import market_bars
from v6ray.gateway.parsing import to_table
from v6ray.storage.maintenance import RESULT_TABLES, compact_table, maintain_tables
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import TABLES
from v6ray.storage.writer import merge_rows

T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
BAR_KEY = list(TABLES["market_bars"].key_columns)
SNAPSHOT_KEY = list(TABLES["futures_snapshots"].key_columns)


def bars(day: int, first_minute: int, count: int, close: float = 1.0) -> pa.Table:
    return market_bars(T0 + timedelta(days=day, minutes=first_minute), count, close=close)

def snapshots(request_id: str, contracts: int = 3) -> pa.Table:
    rows = [
        dict(
            request_id=request_id,
            symbol="ES",
            contract_month="202503",
            bid=1.0,
            ask=2.0,
            last=1.5,
            volume=5.0,
            snapshot_time=T0,
            con_id=100 + c,
        )
        for c in range(contracts)
    ]
    return to_table("futures_snapshots", rows)


def assert_table_rules(data_dir: str) -> None:
    """No duplicate bars; one snapshot row per request and contract."""
    frame = read_table("market_bars", data_dir)
    assert frame.select(BAR_KEY).is_unique().all(), "duplicate bars"
    assert frame.columns == TABLES["market_bars"].schema.names
    snaps = read_table("futures_snapshots", data_dir)
    assert snaps.select(SNAPSHOT_KEY).is_unique().all(), "two rows of a request and contract"


def files_of(data_dir: str, table: str) -> list[str]:
    return DeltaTable(f"{data_dir}/{table}").file_uris()


def sorted_frame(data_dir: str, table: str) -> pl.DataFrame:
    return read_table(table, data_dir).sort(pl.all())


def test_every_step_keeps_the_rows_and_the_table_rules(tmp_path):
    data_dir = str(tmp_path)
    for flush in range(6):  # one small file per flush
        merge_rows(data_dir, "market_bars", bars(0, flush * 10, 10))
        merge_rows(data_dir, "futures_snapshots", snapshots(f"req-{flush}"))
    merge_rows(data_dir, "market_bars", bars(0, 5, 10, close=9.0))  # overlapping: replaced
    merge_rows(data_dir, "futures_snapshots", snapshots("req-2"))  # a retried request
    before = {t: sorted_frame(data_dir, t) for t in ("market_bars", "futures_snapshots")}
    assert before["market_bars"].height == 60 and before["futures_snapshots"].height == 18
    steps = []

    def check(step: str) -> None:
        steps.append(step)
        assert_table_rules(data_dir)
        for table, frame in before.items():
            assert sorted_frame(data_dir, table).equals(frame), f"{table} changed at {step}"

    for table in ("market_bars", "futures_snapshots"):
        result = compact_table(data_dir, table, retention_hours=0, after_step=check)
        assert result["files_after"] == 1 < result["files_before"]
        assert result["files_vacuumed"] >= result["files_before"]  # the replaced files went
    assert steps == ["compact", "vacuum", "checkpoint"] * 2
    assert len(files_of(data_dir, "market_bars")) == 1


def test_the_nightly_run_compacts_only_partitions_written_lately(tmp_path):
    data_dir = str(tmp_path)
    for flush in range(3):
        merge_rows(data_dir, "market_bars", bars(0, flush * 10, 10))  # an old day, 3 files
    old_files = set(files_of(data_dir, "market_bars"))
    time.sleep(0.05)
    cut = datetime.now(UTC)
    for flush in range(3):
        merge_rows(data_dir, "market_bars", bars(1, flush * 10, 10))  # today, 3 files

    result = compact_table(data_dir, "market_bars", written_since=cut)
    assert result["partitions_compacted"] == 1
    after = set(files_of(data_dir, "market_bars"))
    assert old_files <= after  # the old day's files were not rewritten
    assert len(after - old_files) == 1  # today's three became one
    assert_table_rules(data_dir)


def test_maintain_tables_covers_every_result_table_but_never_the_journal(tmp_path):
    data_dir = str(tmp_path)
    merge_rows(data_dir, "market_bars", bars(0, 0, 10))
    merge_rows(data_dir, "market_bars", bars(0, 10, 10))
    assert len(files_of(data_dir, "market_bars")) == 2
    results = maintain_tables(data_dir, now=datetime.now(UTC))
    assert [r["table"] for r in results] == list(RESULT_TABLES)
    assert "ib_requests" not in RESULT_TABLES
    by_table = {r["table"]: r for r in results}
    assert by_table["market_bars"]["files_after"] == 1
    assert not by_table["positions"]["exists"]
    assert not any(r.get("error") for r in results)
    assert_table_rules(data_dir)


def test_readers_and_writers_keep_working_while_maintenance_runs(tmp_path):
    data_dir = str(tmp_path)
    for flush in range(10):
        merge_rows(data_dir, "market_bars", bars(0, flush * 3, 6))
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                frame = read_table("market_bars", data_dir)
                assert frame.select(BAR_KEY).is_unique().all(), "a reader saw a duplicate bar"
                assert frame.height >= 33  # never fewer rows than were there at the start
                reads[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    def writer() -> None:
        try:
            for flush in range(10):  # overlaps the bars already there and adds new ones
                merge_rows(data_dir, "market_bars", bars(0, 25 + flush * 3, 6, close=9.0))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            maintain_tables(data_dir, now=datetime.now(UTC))
    finally:
        threads[1].join(timeout=120)
        stop.set()
        threads[0].join(timeout=60)
    assert not errors, errors
    assert reads[0] > 0
    frame = read_table("market_bars", data_dir)
    assert frame.height == 25 + 30 + 3  # minutes 0..57, each once
    assert frame.filter(pl.col("close") == 9.0).height == 33  # every rewrite kept
    assert_table_rules(data_dir)
