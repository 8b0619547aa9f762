"""The Delta journal (no Ray): round trip, rebuild, group commit, compaction, read_table."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from deltalake import DeltaTable

from v6ray import read_table
from v6ray.errors import SchemaMismatch, StorageError, TableLocked, UnknownTable
from v6ray.queue.group_commit import GroupCommitter
from v6ray.queue.journal import Journal, read_requests, requests_to_arrow
from v6ray.requests.model import Status, new_request
from v6ray.storage.schemas import IB_REQUESTS_SCHEMA, TABLES, table_path

STAMP = datetime(2026, 11, 27, 14, 30, 0, 123456, tzinfo=UTC)


def sample(symbol: str = "ES", **changes):
    request = new_request("futures_snapshot", symbol, priority=1, now=STAMP,
                          parameters={"contract_month": "202612"})
    return request.with_changes(**changes) if changes else request


def parquet_files(path: str) -> list[str]:
    return [name for name in os.listdir(path) if name.endswith(".parquet")]


def test_round_trip_keeps_every_field(data_dir):
    journal = Journal(data_dir)
    original = sample(
        status=Status.PROCESSING,
        attempts=2,
        error_message="IB error 162: pacing violation",
        result_data={"rows": 3, "table": "futures_snapshots"},
        not_before=STAMP + timedelta(seconds=5),
        lease_owner="gw-1",
        lease_expires_at=STAMP + timedelta(seconds=60),
        updated_at=STAMP + timedelta(seconds=1),
    )
    journal.append([original])
    [loaded] = read_requests(data_dir)
    assert loaded == original
    assert loaded.dedup_key == original.dedup_key
    assert loaded.created_at.tzinfo == UTC


def test_arrow_batch_matches_the_table_schema():
    batch = requests_to_arrow([sample("ES"), sample("NQ")], first_seq=41)
    assert batch.schema == IB_REQUESTS_SCHEMA
    assert batch.column("seq").to_pylist() == [41, 42]
    params = batch.column("parameters").to_pylist()[0]
    assert params == '{"contract_month":"202612","exchange":"CME"}'


def test_latest_row_by_seq_wins_and_seq_continues_after_reopen(data_dir):
    journal = Journal(data_dir)
    first = sample("ES")
    journal.append([first, sample("NQ")])
    journal.append([first.with_changes(status=Status.PROCESSING, attempts=1)])
    journal.append([first.with_changes(status=Status.SUCCESS, attempts=1)])
    journal.close()  # as its process's exit would
    reopened = Journal(data_dir)
    latest = {r.symbol: r for r in reopened.load_latest()}
    assert latest["ES"].status is Status.SUCCESS
    assert latest["NQ"].status is Status.PENDING
    reopened.append([first.with_changes(status=Status.FAILED)])
    frame = pl.from_arrow(DeltaTable(reopened.path).to_pyarrow_table())
    assert sorted(frame["seq"].to_list()) == [1, 2, 3, 4, 5]  # strictly increasing, no reuse
    assert {r.symbol: r for r in read_requests(data_dir)}["ES"].status is Status.FAILED


def test_read_table_gives_one_row_per_request(data_dir):
    journal = Journal(data_dir)
    a, b = sample("ES"), sample("NQ")
    journal.append([a, b])
    journal.append([a.with_changes(status=Status.CANCELLED)])
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == 2
    assert dict(zip(frame["symbol"], frame["status"], strict=True)) == {
        "ES": "CANCELLED", "NQ": "PENDING"}
    contract = ["request_id", "request_type", "symbol", "priority", "status", "parameters",
                "result_table", "created_at", "updated_at", "attempts", "error_message",
                "result_data"]
    assert frame.columns[: len(contract)] == contract


def test_read_table_of_a_missing_or_unknown_table(data_dir, monkeypatch):
    journal = Journal(data_dir)  # a service's data dir: its journal exists, market_bars not yet
    frame = read_table("market_bars", data_dir=data_dir)
    assert frame.height == 0
    assert frame.columns == TABLES["market_bars"].schema.names
    assert read_table("ib_requests", data_dir=data_dir).height == 0
    with pytest.raises(UnknownTable):
        read_table("../etc/passwd", data_dir=data_dir)
    monkeypatch.setenv("V6RAY_DATA_DIR", data_dir)  # the default data dir comes from settings
    journal.append([sample("ES")])
    assert read_table("ib_requests").height == 1


def test_compaction_keeps_latest_state_and_bounds_files(data_dir):
    journal = Journal(data_dir)
    requests = [sample(f"S{i}") for i in range(20)]
    journal.append(requests)
    for round_ in range(1, 30):  # 29 more commits, each one more change per request
        journal.append([r.with_changes(attempts=round_) for r in requests[:5]])
    before = read_table("ib_requests", data_dir=data_dir)
    path = table_path(data_dir, "ib_requests")
    assert len(parquet_files(path)) == 30
    report = journal.compact()
    assert report["rows_before"] == 20 + 29 * 5
    assert report["rows_after"] == 20
    assert len(parquet_files(path)) <= 2
    assert journal.stats()["files"] == report["files"] <= 2
    after = read_table("ib_requests", data_dir=data_dir)
    assert after.sort("request_id").equals(before.sort("request_id"))
    journal.append([requests[0].with_changes(status=Status.CANCELLED)])  # seq keeps growing
    latest = {r.request_id: r for r in read_requests(data_dir)}
    assert latest[requests[0].request_id].status is Status.CANCELLED
    assert latest[requests[1].request_id].attempts == 29


def test_lookup_reads_one_request(data_dir):
    journal = Journal(data_dir)
    a = sample("ES")
    journal.append([a])
    journal.append([a.with_changes(status=Status.SUCCESS, result_data={"rows": 1})])
    assert journal.lookup(a.request_id).result_data == {"rows": 1}
    assert journal.lookup("missing") is None


def test_group_commit_batches_concurrent_appends(data_dir):
    journal = Journal(data_dir)
    committer = GroupCommitter(journal)

    async def scenario():
        async def one(i):
            await committer.append([sample(f"S{i}")])

        await asyncio.gather(*(one(i) for i in range(300)))
        await committer.barrier()

    asyncio.run(scenario())
    assert journal.rows == 300
    assert journal.commits < 10  # most appends shared a commit
    assert len(read_requests(data_dir)) == 300


def test_group_commit_compacts_automatically_and_on_demand(data_dir):
    journal = Journal(data_dir)
    committer = GroupCommitter(journal, compact_every_commits=5)
    request = sample("ES")

    async def scenario():
        for attempt in range(12):  # sequential: one commit each
            await committer.append([request.with_changes(attempts=attempt)])
        return await committer.compact()

    report = asyncio.run(scenario())
    assert report["rows_after"] == 1
    assert journal.commits == 12
    assert journal.commits_since_compaction == 0
    assert len(parquet_files(table_path(data_dir, "ib_requests"))) == 1
    assert read_requests(data_dir)[0].attempts == 11


def test_compactions_beside_appends_lose_no_state(data_dir):
    """Appends go on while compactions read, rewrite, vacuum and checkpoint the table."""
    journal = Journal(data_dir)
    requests = [sample(f"S{i}") for i in range(50)]
    journal.append(requests)
    stop = threading.Event()
    reports = []

    def compact_repeatedly():
        while not stop.is_set():
            reports.append(journal.compact())

    compactor = threading.Thread(target=compact_repeatedly)
    compactor.start()
    try:
        for round_ in range(1, 121):  # each round changes 5 requests
            changed = requests[round_ % 10 * 5: round_ % 10 * 5 + 5]
            journal.append([r.with_changes(attempts=round_) for r in changed])
    finally:
        stop.set()
        compactor.join()
    assert len(reports) >= 2  # compactions really ran beside the appends
    expected = {r.request_id: max(k for k in range(121) if k % 10 == i // 5 and k) for i, r
                in enumerate(requests)}
    latest = {r.request_id: r.attempts for r in read_requests(data_dir)}
    assert latest == expected
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == 50 and dict(zip(frame["request_id"], frame["attempts"],
                                           strict=True)) == expected
    journal.compact()
    assert len(parquet_files(table_path(data_dir, "ib_requests"))) == 1
    assert read_requests(data_dir) != []


def test_failed_commit_fails_its_callers_and_its_states_go_into_the_next_commit(
    data_dir, monkeypatch
):
    journal = Journal(data_dir, commit_retries=0)
    committer = GroupCommitter(journal)
    real_append = journal._appender.append
    calls = []

    def flaky(data):
        calls.append(data.num_rows)
        if len(calls) == 1:
            raise OSError("disk full")
        return real_append(data)

    monkeypatch.setattr(journal._appender, "append", flaky)

    async def scenario():
        with pytest.raises(StorageError, match="disk full"):
            await committer.append([sample("ES")])
        assert committer.stats()["failed_commits"] == 1
        await committer.append([sample("NQ")])  # carries the failed commit's state first

    asyncio.run(scenario())
    assert calls == [1, 2]
    assert [r.symbol for r in read_requests(data_dir)] == ["ES", "NQ"]


def test_read_table_retries_a_read_that_raced_a_vacuum(data_dir, monkeypatch):
    from v6ray.storage import reader

    Journal(data_dir).append([sample("ES")])
    real = reader.DeltaTable
    failures = []

    class RacingTable(real):
        def to_pyarrow_table(self, *args, **kwargs):
            if not failures:
                failures.append(1)
                raise FileNotFoundError("part-00000.parquet not found (vacuumed)")
            return super().to_pyarrow_table(*args, **kwargs)

    monkeypatch.setattr(reader, "DeltaTable", RacingTable)
    assert read_table("ib_requests", data_dir=data_dir).height == 1
    assert failures == [1]


def test_group_commits_are_spaced_by_min_interval_but_an_idle_one_starts_at_once(data_dir):
    journal = Journal(data_dir)
    starts: list[float] = []
    real_append = journal.append

    def timed_append(rows):
        starts.append(time.monotonic())
        real_append(rows)

    journal.append = timed_append
    committer = GroupCommitter(journal, min_interval=0.3)

    async def scenario():
        began = time.monotonic()
        await committer.append([sample("A")])
        assert starts[0] - began < 0.2  # idle journal: no waiting
        # Three appends while the spacing runs: one commit 0.3 s after the first started.
        await asyncio.gather(*(committer.append([sample(s)]) for s in ("B", "C", "D")))

    asyncio.run(scenario())
    assert journal.commits == 2 and journal.rows == 4
    assert starts[1] - starts[0] >= 0.29


def test_one_writer_at_a_time_and_close_hands_the_table_over(data_dir):
    journal = Journal(data_dir)
    journal.append([sample("ES")])
    with pytest.raises(TableLocked, match=f"pid {os.getpid()}"):
        Journal(data_dir, lock_timeout=0.2)
    journal.close()
    with pytest.raises(StorageError, match="closed"):
        journal.append([sample("NQ")])
    successor = Journal(data_dir, lock_timeout=0.2)
    successor.append([sample("NQ")])
    assert sorted(r.symbol for r in successor.load_latest()) == ["ES", "NQ"]
    assert journal.lookup(successor.load_latest()[0].request_id) is not None  # reads go on


def test_open_removes_what_a_crashed_writer_left_and_spares_what_a_live_one_writes(data_dir):
    journal = Journal(data_dir)
    journal.append([sample("ES")])
    journal.close()
    path = table_path(data_dir, "ib_requests")
    old, young = ("part-00000-crashed-c000.snappy.parquet",
                  os.path.join("_delta_log", ".v6ray-00ff.json.tmp")), \
        ("part-00000-inflight-c000.snappy.parquet",)
    for name in (*old, *young):
        with open(os.path.join(path, name), "wb") as sink:
            sink.write(b"x")
    for name in old:
        os.utime(os.path.join(path, name), (time.time() - 7200, time.time() - 7200))
    reopened = Journal(data_dir)
    assert not any(os.path.exists(os.path.join(path, name)) for name in old)
    assert os.path.exists(os.path.join(path, young[0]))
    assert [r.symbol for r in reopened.load_latest()] == ["ES"]


def test_rows_that_do_not_fit_fail_at_once_and_are_not_retried(data_dir, monkeypatch):
    journal = Journal(data_dir, commit_retries=5)
    calls = []
    real = journal._appender.append

    def counting(data):
        calls.append(1)
        return real(data.drop_columns(["lease_owner"]))

    monkeypatch.setattr(journal._appender, "append", counting)
    with pytest.raises(SchemaMismatch, match="'lease_owner' is missing"):
        journal.append([sample("ES")])
    assert calls == [1]
    assert read_requests(data_dir) == []
