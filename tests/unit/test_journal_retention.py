"""Retention of the journal: old finished requests move to ``ib_requests_archive``; a restart
reads only the hot journal; look-ups, dedup and ``read_table`` still see every request;
compaction reads only what changed since the last one (no Ray)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from deltalake import DeltaTable

from v6ray import read_table
from v6ray.queue.actor import RequestQueue
from v6ray.queue.archive import MANIFEST
from v6ray.queue.config import RETENTION_ENV, QueueConfig
from v6ray.queue.journal import Journal, read_requests
from v6ray.requests.model import Priority, RequestType, Status, new_request
from v6ray.storage.migrations import _request_parameters
from v6ray.storage.schemas import requests_archive_path, table_path

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def request(symbol: str, created: datetime, month: str = "202612"):
    return new_request(
        "futures_snapshot", symbol, now=created, parameters={"contract_month": month}
    )


def finished(r, at: datetime, status: Status = Status.SUCCESS):
    return r.with_changes(
        status=status,
        updated_at=at,
        attempts=1,
        result_data={"rows": 1} if status is Status.SUCCESS else None,
    )


def hot_ids(data_dir: str) -> list[str]:
    return (
        DeltaTable(table_path(data_dir, "ib_requests"))
        .to_pyarrow_table(columns=["request_id"])["request_id"]
        .to_pylist()
    )


def archived_ids(data_dir: str) -> list[str]:
    path = requests_archive_path(data_dir)
    if not DeltaTable.is_deltatable(path):
        return []
    return DeltaTable(path).to_pyarrow_table(columns=["request_id"])["request_id"].to_pylist()


@pytest.fixture
def history(data_dir):
    """A journal with old finished requests, an old one still live, an old one finished
    lately and a new one; returns (journal, requests by role)."""
    journal = Journal(data_dir)
    old = NOW - timedelta(days=60)
    gone = [request(f"G{i}", old + timedelta(hours=i)) for i in range(6)]
    live_old = request("LIVE", old)
    late = request("LATE", old)
    fresh = request("NEW", NOW - timedelta(hours=1))
    journal.append([*gone, live_old, late, fresh])
    journal.append([finished(r, r.created_at + timedelta(seconds=5)) for r in gone[:5]])
    journal.append(
        [finished(gone[5], old, Status.FAILED), finished(late, NOW - timedelta(days=10))]
    )
    roles = {"gone": gone, "live_old": live_old, "late": late, "fresh": fresh}
    return journal, roles


def test_old_finished_requests_move_to_the_archive_and_every_other_one_stays(data_dir, history):
    journal, roles = history
    before = read_table("ib_requests", data_dir=data_dir)
    report = journal.compact(now=NOW.timestamp())
    assert report["archived"] == 6
    gone = {r.request_id for r in roles["gone"]}
    assert sorted(archived_ids(data_dir)) == sorted(gone)
    assert set(hot_ids(data_dir)) == {roles[k].request_id for k in ("live_old", "late", "fresh")}
    # read_table: still every request, one row each, the same latest states.
    after = read_table("ib_requests", data_dir=data_dir)
    assert after.height == 9 and after["request_id"].n_unique() == 9
    assert after.sort("request_id").equals(before.sort("request_id"))
    assert {r.request_id: r.status for r in read_requests(data_dir)} == dict(
        zip(before["request_id"], map(Status, before["status"]), strict=True)
    )
    # A second compaction has nothing more to move and moves nothing twice.
    assert journal.compact(now=NOW.timestamp())["archived"] == 0
    assert sorted(archived_ids(data_dir)) == sorted(gone)


def test_lookup_answers_for_archived_ids_and_unknown_ones_stay_unknown(data_dir, history):
    journal, roles = history
    journal.compact(now=NOW.timestamp())
    first = roles["gone"][0]
    found = journal.lookup(first.request_id)
    assert found.status is Status.SUCCESS and found.result_data == {"rows": 1}
    assert found.parameters == {"contract_month": "202612", "exchange": "CME"}
    assert journal.lookup(roles["gone"][5].request_id).status is Status.FAILED
    assert journal.lookup(roles["fresh"].request_id).status is Status.PENDING
    assert journal.lookup("no-such-request") is None


def test_restart_reads_the_hot_journal_only(data_dir, history):
    journal, roles = history
    journal.compact(now=NOW.timestamp())
    journal.close()
    # Take the archive's data away: a restart that read it would fail or find them.
    archive = requests_archive_path(data_dir)
    for name in os.listdir(archive):
        if name.endswith(".parquet"):
            os.remove(os.path.join(archive, name))
    reopened = Journal(data_dir)
    live, finals, counts = reopened.load_for_restore(final_limit=None)
    assert {r.request_id for r in live} == {roles["live_old"].request_id, roles["fresh"].request_id}
    assert [r.request_id for r in finals] == [roles["late"].request_id]
    assert counts == {
        (Status.PENDING, RequestType.FUTURES_SNAPSHOT, Priority.NORMAL): 2,
        (Status.SUCCESS, RequestType.FUTURES_SNAPSHOT, Priority.NORMAL): 1,
    }


def test_restore_builds_only_the_cached_finals_but_counts_them_all(data_dir):
    journal = Journal(data_dir)
    done = [request(f"D{i}", NOW - timedelta(minutes=30 - i)) for i in range(5)]
    journal.append(done)
    journal.append([finished(r, r.created_at + timedelta(seconds=1)) for r in done])
    journal.close()
    queue = RequestQueue(data_dir, QueueConfig(terminal_cache_size=2))
    assert queue.core.get(done[4].request_id).status is Status.SUCCESS  # newest: cached
    assert queue.core.get(done[0].request_id) is None  # not built at restart...

    async def read_back():
        return await queue.get(done[0].request_id), await queue.stats()

    oldest, stats = asyncio.run(read_back())
    assert oldest.status is Status.SUCCESS  # ...but read from the journal
    assert stats["depth"]["SUCCESS"] == 5
    queue.close()


def test_seq_keeps_growing_after_everything_was_archived(data_dir):
    journal = Journal(data_dir)
    old = request("OLD", NOW - timedelta(days=90))
    journal.append([old])
    journal.append([finished(old, old.created_at)])
    journal.compact(now=NOW.timestamp())
    assert hot_ids(data_dir) == [] and archived_ids(data_dir) == [old.request_id]
    journal.close()
    reopened = Journal(data_dir)
    reopened.load_for_restore(final_limit=0)
    reopened.append([request("NEXT", NOW)])
    seqs = DeltaTable(table_path(data_dir, "ib_requests")).to_pyarrow_table()["seq"].to_pylist()
    assert seqs == [3]  # after the archive's rows (1, 2), not 1 again


def test_dedup_after_restart_coalesces_with_live_requests_only(data_dir, history):
    journal, roles = history
    journal.compact(now=NOW.timestamp())
    journal.close()

    async def scenario():
        queue = RequestQueue(data_dir)
        # Same question as a live (old, PENDING) request: coalesced into it.
        same_live = await queue.submit("futures_snapshot", "LIVE", 2, {"contract_month": "202612"})
        # Same question as an archived (finished) one: a new request.
        same_gone = await queue.submit("futures_snapshot", "G0", 2, {"contract_month": "202612"})
        archived = await queue.get(roles["gone"][0].request_id)
        queue.close()
        return same_live, same_gone, archived

    same_live, same_gone, archived = asyncio.run(scenario())
    assert same_live == roles["live_old"].request_id
    assert same_gone != roles["gone"][0].request_id
    assert archived.status is Status.SUCCESS
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == 10 and frame["request_id"].n_unique() == 10


def test_retention_is_configurable_by_config_and_environment(data_dir, monkeypatch):
    monkeypatch.delenv(RETENTION_ENV, raising=False)
    assert QueueConfig().retention_days == 30
    monkeypatch.setenv(RETENTION_ENV, "7.5")
    assert QueueConfig().retention_days == 7.5
    assert QueueConfig(retention_days=2).retention_days == 2
    monkeypatch.setenv(RETENTION_ENV, "a month")
    with pytest.raises(ValueError, match=RETENTION_ENV):
        QueueConfig()
    with pytest.raises(ValueError, match="retention_days"):
        QueueConfig(retention_days=0)
    # A request finished 8 days ago is archived under a 7-day window, kept under 30 days.
    r = request("ES", NOW - timedelta(days=9))
    for days, archived in ((30, 0), (7, 1)):
        journal = Journal(data_dir, retention_days=days)
        journal.load_for_restore(final_limit=0)
        if days == 30:
            journal.append([r])
            journal.append([finished(r, NOW - timedelta(days=8))])
        assert journal.compact(now=NOW.timestamp())["archived"] == archived
        journal.close()
    assert archived_ids(data_dir) == [r.request_id]


def test_compaction_reads_only_recent_files_and_the_days_they_touch(data_dir):
    journal = Journal(data_dir)
    for day in range(1, 6):  # five earlier days, each compacted into its day file
        created = NOW - timedelta(days=day)
        rs = [request(f"D{day}X{i}", created + timedelta(minutes=i)) for i in range(20)]
        journal.append(rs)
        journal.append([finished(r, r.created_at + timedelta(seconds=3)) for r in rs])
    journal.compact(now=NOW.timestamp())
    path = table_path(data_dir, "ib_requests")
    day_files = sorted(n for n in os.listdir(path) if n.startswith("base-"))
    assert len(day_files) == 5
    today = [request(f"T{i}", NOW + timedelta(seconds=i)) for i in range(10)]
    for r in today:  # ten commits of today's work
        journal.append([r])
    yesterday_straggler = request("Y", NOW - timedelta(days=1) + timedelta(hours=2))
    journal.append([yesterday_straggler])
    report = journal.compact(now=NOW.timestamp())
    # The 11 recent files and yesterday's day file, nothing of the four days before.
    assert report["files_read"] == 12
    assert report["rows_before"] == 11 + 20
    remaining = sorted(n for n in os.listdir(path) if n.startswith("base-"))
    assert set(day_files) - set(remaining) == {
        f for f in day_files if f.startswith("base-" + (NOW - timedelta(days=1)).strftime("%Y%m%d"))
    }
    assert len(remaining) == 6  # five days, yesterday's rewritten, plus today
    assert read_table("ib_requests", data_dir=data_dir).height == 100 + 11


def test_an_interrupted_move_is_taken_back_then_done_once(data_dir, history, monkeypatch):
    journal, roles = history
    expected = read_table("ib_requests", data_dir=data_dir).sort("request_id")

    def crash(*args, **kwargs):
        raise OSError("disk gone between the archive's commit and the journal's")

    monkeypatch.setattr(journal, "commit_rewrite", crash)
    with pytest.raises(OSError):
        journal.compact(now=NOW.timestamp())
    # The rows are in both tables now; readers still see each request once.
    gone = sorted(r.request_id for r in roles["gone"])
    assert sorted(archived_ids(data_dir)) == gone
    assert set(gone) <= set(hot_ids(data_dir))
    assert os.path.exists(os.path.join(requests_archive_path(data_dir), MANIFEST))
    assert read_table("ib_requests", data_dir=data_dir).sort("request_id").equals(expected)
    assert journal.lookup(roles["gone"][0].request_id).status is Status.SUCCESS
    monkeypatch.undo()
    report = journal.compact(now=NOW.timestamp())
    assert report["recovered"]["rolled_back"] is True
    assert report["archived"] == 6
    assert sorted(archived_ids(data_dir)) == gone  # once each
    assert not set(gone) & set(hot_ids(data_dir))
    assert not os.path.exists(os.path.join(requests_archive_path(data_dir), MANIFEST))
    assert read_table("ib_requests", data_dir=data_dir).sort("request_id").equals(expected)


def test_migrations_find_the_parameters_of_archived_requests(data_dir, history):
    journal, roles = history
    journal.compact(now=NOW.timestamp())
    parameters = _request_parameters(data_dir)
    assert parameters[roles["gone"][0].request_id] == {
        "contract_month": "202612",
        "exchange": "CME",
    }
    assert parameters[roles["fresh"].request_id] == {"contract_month": "202612", "exchange": "CME"}


def test_small_archive_files_are_merged_and_keep_every_request_once(data_dir, monkeypatch):
    monkeypatch.setattr("v6ray.queue.archive.MERGE_AT", 3)
    journal = Journal(data_dir)
    moved = []
    for day in range(40, 36, -1):  # four moves, one archive file each
        batch = [request(f"A{day}X{i}", NOW - timedelta(days=day, minutes=i)) for i in range(5)]
        journal.append(batch)
        journal.append([finished(r, r.created_at) for r in batch])
        report = journal.compact(now=NOW.timestamp())
        assert report["archived"] == 5
        moved += [r.request_id for r in batch]
        assert report["archive_files_merged"] == (3 if day == 38 else 0)
    assert len(DeltaTable(requests_archive_path(data_dir)).file_uris()) == 2  # 1 merged + 1
    assert sorted(archived_ids(data_dir)) == sorted(moved)
    assert journal.lookup(moved[0]).status is Status.SUCCESS
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == 20 and frame["request_id"].n_unique() == 20
