"""Every table on a real S3-compatible server: moto's, started by the ``s3_server`` fixture.

Writers, readers, ``show``, ``compact``, ``derive`` and the queue journal run against
``s3://<fresh bucket>/data`` exactly as against a folder; concurrent writers (separate
processes) never lose a commit; an acknowledged journal append survives a SIGKILL.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from v6ray import read_table
from v6ray.cli.main import main
from v6ray.errors import NoTables
from v6ray.queue.journal import Journal, read_requests
from v6ray.requests.instruments import bar_series
from v6ray.requests.model import Status, new_request
from v6ray.stats.derive import derive_and_write
from v6ray.storage.location import DataRoot
from v6ray.storage.maintenance import compact_table
from v6ray.storage.schemas import table_path
from v6ray.storage.writer import merge_rows

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def daily_bars(request_id: str, start: int, count: int, symbol: str = "SPY") -> pa.Table:
    """``count`` daily bars of ``symbol`` from T0 + ``start`` days (regular hours)."""
    rows = []
    for i in range(start, start + count):
        close = 100.0 * math.exp(0.01 if i % 2 == 0 else -0.01)
        rows.append(
            {
                "request_id": request_id,
                "symbol": symbol,
                "bar_size": "1 day",
                "what_to_show": "TRADES",
                **bar_series(symbol, {}),
                "timestamp": T0 + timedelta(days=i),
                "open": close,
                "high": close + 1,
                "low": close - 1,
                "close": close,
                "volume": 1000.0,
            }
        )
    return pa.Table.from_pylist(rows)


def delta(location: str) -> DeltaTable:
    return DeltaTable(location, storage_options=DataRoot.parse(location).storage_options())


def test_a_table_round_trips_through_the_s3_server(s3_data_dir):
    root = DataRoot.parse(s3_data_dir)
    location = root.join("probe")
    options = root.storage_options()
    assert options["conditional_put"] == "etag"
    write_deltalake(location, pa.table({"a": [1, 2]}), storage_options=options)
    write_deltalake(location, pa.table({"a": [3]}), mode="append", storage_options=options)
    table = DeltaTable(location, storage_options=options)
    assert table.version() == 1
    assert sorted(table.to_pyarrow_table()["a"].to_pylist()) == [1, 2, 3]


def test_writer_read_table_show_and_compact(s3_data_dir, capsys):
    first = merge_rows(s3_data_dir, "market_bars", daily_bars("a", 0, 10))
    again = merge_rows(s3_data_dir, "market_bars", daily_bars("b", 5, 10))  # 5 overlap
    assert (first["rows"], again["rows"]) == (10, 10)
    frame = read_table("market_bars", data_dir=s3_data_dir)
    assert frame.height == 15  # overlapping bars replaced, never duplicated
    assert frame.filter(pl.col("request_id") == "b").height == 10
    assert delta(table_path(s3_data_dir, "market_bars")).version() == 2

    assert main(["show", "market_bars", "--limit", "3", "--data-dir", s3_data_dir]) == 0
    shown = capsys.readouterr()
    assert f"15 row(s) in market_bars ({s3_data_dir})" in shown.err

    result = compact_table(s3_data_dir, "market_bars", retention_hours=0)
    assert result["exists"] and result["files_after"] == 1
    assert result["files_vacuumed"] >= 1  # the file the overlapping merge rewrote
    assert read_table("market_bars", data_dir=s3_data_dir).height == 15
    assert main(["compact", "market_bars", "--data-dir", s3_data_dir]) == 0
    assert "market_bars: 1 → 1 files" in capsys.readouterr().out


def test_read_table_takes_explicit_storage_options(s3_data_dir, monkeypatch):
    merge_rows(s3_data_dir, "market_bars", daily_bars("a", 0, 3))
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # this process no longer finds the server
    options = {"AWS_ENDPOINT_URL": endpoint}
    assert read_table("market_bars", data_dir=s3_data_dir, storage_options=options).height == 3


def test_an_s3_prefix_without_tables_raises_instead_of_reading_empty(s3_data_dir):
    with pytest.raises(NoTables) as caught:
        read_table("market_bars", data_dir=s3_data_dir + "-typo")
    assert f"{s3_data_dir}-typo/simulated" in str(caught.value)


def test_simulated_tables_are_found_under_the_root(s3_data_dir):
    merge_rows(f"{s3_data_dir}/simulated", "market_bars", daily_bars("a", 0, 4))
    assert read_table("market_bars", data_dir=s3_data_dir).height == 4


def test_derive_reads_and_writes_s3(s3_data_dir):
    merge_rows(s3_data_dir, "market_bars", daily_bars("a", 0, 30))
    result = derive_and_write(s3_data_dir, ["SPY"], computed_at=T0 + timedelta(days=31))
    assert result["symbols"] == ["SPY"] and result["rows"] > 0
    stats = read_table("derived_statistics", data_dir=s3_data_dir)
    assert stats.height == result["rows"]
    assert stats["realized_vol_20d"].drop_nulls().len() > 0


# ------------------------------------------------------------------------------ journal


def sample(symbol: str, **changes):
    request = new_request("futures_snapshot", symbol, priority=1, now=T0)
    return request.with_changes(**changes) if changes else request


def test_journal_round_trip_compaction_and_rebuild(s3_data_dir):
    journal = Journal(s3_data_dir)
    assert journal.on_object_store
    es, nq = sample("ES"), sample("NQ")
    journal.append([es, nq])
    journal.append([es.with_changes(status=Status.PROCESSING, attempts=1)])
    journal.append([es.with_changes(status=Status.SUCCESS, attempts=1)])
    assert journal.version == 3
    done = journal.compact()
    assert (done["rows_before"], done["rows_after"]) == (4, 2)
    assert done["files"] == 1 and done["files_removed"] == 3
    journal.append([nq.with_changes(status=Status.CANCELLED)])  # after compaction: seq wins
    journal.close()

    states = {r.symbol: r.status for r in Journal(s3_data_dir).load_latest()}
    assert states == {"ES": Status.SUCCESS, "NQ": Status.CANCELLED}
    assert {r.symbol: r.status for r in read_requests(s3_data_dir)} == states
    frame = read_table("ib_requests", data_dir=s3_data_dir)
    assert sorted(frame["status"].to_list()) == ["CANCELLED", "SUCCESS"]


def test_journal_compaction_beside_appends_keeps_every_append(s3_data_dir):
    import threading

    journal = Journal(s3_data_dir)
    journal.append([sample(f"S{i}") for i in range(20)])
    appended: list[str] = []
    stop = threading.Event()

    def keep_appending() -> None:
        i = 0
        while not stop.is_set() or i < 3:
            request = sample(f"A{i}")
            journal.append([request])
            appended.append(request.request_id)
            i += 1

    appender = threading.Thread(target=keep_appending)
    appender.start()
    try:
        done = journal.compact()  # on its own thread in the queue; here beside the appends
    finally:
        stop.set()
        appender.join(timeout=120)
    assert done["rows_after"] >= 20
    journal.close()
    ids = {r.request_id for r in Journal(s3_data_dir).load_latest()}
    assert set(appended) <= ids and len(ids) == 20 + len(appended)


ACKING_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from v6ray.requests.model import new_request
    from v6ray.queue.journal import Journal

    journal = Journal(sys.argv[1])
    for i in range(1000):
        batch = [new_request("futures_snapshot", "ES", now=datetime.now(UTC),
                             request_id=f"ack-{i}-{j}") for j in range(5)]
        journal.append(batch)
        print(f"acked {i}", flush=True)  # acknowledged only after append returned
    """
)


def test_acknowledged_journal_appends_survive_a_sigkill(s3_data_dir):
    writer = subprocess.Popen(
        [sys.executable, "-c", ACKING_WRITER, s3_data_dir],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    acked = []
    try:
        for line in writer.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) == 8:
                writer.send_signal(signal.SIGKILL)  # mid-run: maybe mid-commit
                break
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    ids = {r.request_id for r in Journal(s3_data_dir).load_latest()}
    for i in acked:
        assert {f"ack-{i}-{j}" for j in range(5)} <= ids
    # whole batches only: a commit is all or nothing
    batches = {rid.rsplit("-", 1)[0] for rid in ids}
    assert all({f"{b}-{j}" for j in range(5)} <= ids for b in batches)


# --------------------------------------------------------------------------- concurrency

WRITERS = 4
BATCHES = 6
ROWS = 3


def _merge_batches(data_dir: str, writer: int, start, results) -> None:
    conflicts = 0
    for batch in range(BATCHES):
        # Every writer begins each batch at once: the commits race for the same version.
        # (A barrier per batch, not once: a merge that prunes to a few files is quick, and
        # on a loaded machine writers started together drift apart within a batch or two.)
        start.wait()
        # The writers' days interleave: every batch spans the others' days of the round.
        # A MERGE's conflict check only counts concurrent files whose partition and key
        # statistics overlap its own rows (delta-rs prunes on them), so disjoint batches
        # would commit side by side without ever racing.
        first = batch * WRITERS * ROWS + writer
        rows = pa.concat_tables(
            daily_bars(f"w{writer}-b{batch}", first + k * WRITERS, 1) for k in range(ROWS)
        )
        # On a loaded machine a writer can lose a dozen races in a row (the writer
        # task's Ray retries cover that in the service). The retry budget is not under
        # test here, the safety of racing commits is.
        conflicts += merge_rows(data_dir, "market_bars", rows, max_attempts=60)["conflicts"]
    results.put((writer, conflicts))


def test_concurrent_merges_from_separate_processes_lose_no_commit(s3_data_dir):
    merge_rows(s3_data_dir, "market_bars", daily_bars("seed", -ROWS, ROWS))  # one creator
    spawn = multiprocessing.get_context("spawn")  # each its own deltalake, like Ray workers
    start, results = spawn.Barrier(WRITERS), spawn.Queue()
    workers = [
        spawn.Process(target=_merge_batches, args=(s3_data_dir, w, start, results))
        for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0
    conflicts = sum(results.get(timeout=5)[1] for _ in workers)

    frame = read_table("market_bars", data_dir=s3_data_dir)
    per_batch = frame.group_by("request_id").len()
    assert per_batch.height == WRITERS * BATCHES + 1
    assert set(per_batch["len"].to_list()) == {ROWS}  # every batch present exactly once
    assert frame.height == (WRITERS * BATCHES + 1) * ROWS
    history = delta(table_path(s3_data_dir, "market_bars")).history()
    merges = [h for h in history if h["operation"] == "MERGE"]
    assert len(merges) == WRITERS * BATCHES + 1  # zero lost commits
    assert conflicts > 0  # the writers did race, and their lost commits were retried


def test_concurrent_blind_appends_with_separate_handles(s3_data_dir):
    location = DataRoot.parse(s3_data_dir).join("appends")
    options = DataRoot.parse(s3_data_dir).storage_options()
    write_deltalake(location, pa.table({"w": [-1], "i": [-1]}), storage_options=options)

    import threading

    errors: list[BaseException] = []
    retries = []

    def append(writer: int) -> None:
        handle = DeltaTable(location, storage_options=options)  # its own snapshot
        try:
            for i in range(8):
                # deltalake retries a lost version by itself; past its limit it raises
                # CommitFailedError with nothing committed, and the writer tries again
                for _attempt in range(10):
                    try:
                        write_deltalake(handle, pa.table({"w": [writer], "i": [i]}), mode="append")
                        break
                    except CommitFailedError:
                        retries.append(writer)
                else:
                    raise AssertionError("no commit after 10 attempts")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    table = DeltaTable(location, storage_options=options)
    rows = sorted(zip(*table.to_pyarrow_table().to_pydict().values(), strict=True))
    assert rows == [(-1, -1)] + [(w, i) for w in range(4) for i in range(8)], retries
    assert table.version() == 32  # one version per append, none overwritten


# ------------------------------------------------------------------------- Ray writers


def test_writer_tasks_commit_to_s3_with_credentials_from_their_own_environment(
    s3_data_dir, ray_cluster
):
    """The task gets the data root and rows only; it finds the server and credentials in
    its worker's environment. (Real nodes have AWS_* set before `ray start`; the shared
    test cluster started before the S3 server, so its workers get them via runtime_env.)"""
    import ray

    from v6ray.storage.writer import write_rows

    env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    writer = write_rows.options(runtime_env={"env_vars": env})
    batches = [daily_bars(f"task-{i}", i * 4, 4) for i in range(4)]
    results = ray.get(
        [writer.remote(s3_data_dir, "market_bars", rows) for rows in batches], timeout=240
    )
    assert sorted(r["rows"] for r in results) == [4, 4, 4, 4]
    frame = read_table("market_bars", data_dir=s3_data_dir)
    assert frame.height == 16
    assert set(frame["request_id"].to_list()) == {f"task-{i}" for i in range(4)}
