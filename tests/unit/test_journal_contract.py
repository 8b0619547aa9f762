"""Both ``RequestJournal`` implementations, the Delta table and the in-memory twin the queue's
unit tests run on, pass the same behavioural checks (no Ray): the twin cannot drift."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from v6ray.errors import StorageError, TableLocked
from v6ray.queue.config import QueueConfig
from v6ray.queue.journal import Journal, read_requests
from v6ray.queue.journal_api import JournalFactory, RequestJournal
from v6ray.queue.memory_journal import MemoryJournals
from v6ray.requests.model import IBRequest, Priority, RequestType, Status, new_request

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CONFIG = QueueConfig(journal_lock_timeout_seconds=0.2, retention_days=30)


@dataclass
class Twin:
    """One journal implementation over one data dir: how to open it, how to read it fresh."""

    factory: JournalFactory
    read: Callable[[str], list[IBRequest]]  # latest of every request, archived ones too
    data_dir: str

    def open(self) -> RequestJournal:
        journal = self.factory(self.data_dir, CONFIG)
        assert isinstance(journal, RequestJournal)  # every operation of the Protocol
        return journal

    def reopen(self, journal: RequestJournal) -> RequestJournal:
        """A restart: the old writer closes, a new one loads (as a starting queue does)."""
        journal.close()
        successor = self.open()
        successor.load_for_restore(final_limit=None)
        return successor

    def latest(self) -> dict[str, IBRequest]:
        return {r.request_id: r for r in self.read(self.data_dir)}


@pytest.fixture(params=["delta", "memory"])
def twin(request, data_dir) -> Twin:
    if request.param == "delta":
        return Twin(Journal.for_queue, read_requests, data_dir)
    journals = MemoryJournals()
    return Twin(journals, journals.read_requests, data_dir)


def sample(symbol: str, created: datetime = NOW, **changes) -> IBRequest:
    request = new_request("futures_snapshot", symbol, now=created,
                          parameters={"contract_month": "202612"})
    return request.with_changes(**changes) if changes else request


def finished(r: IBRequest, at: datetime, status: Status = Status.SUCCESS) -> IBRequest:
    return r.with_changes(status=status, updated_at=at, attempts=1,
                          result_data={"rows": 1} if status is Status.SUCCESS else None)


def test_every_field_comes_back_and_the_latest_row_wins(twin):
    journal = twin.open()
    pending, nq = sample("ES"), sample("NQ")
    es = pending.with_changes(
        status=Status.PROCESSING, attempts=2, error_message="IB error 162",
        not_before=NOW + timedelta(seconds=5), lease_owner="gw-1",
        lease_expires_at=NOW + timedelta(seconds=60), updated_at=NOW + timedelta(seconds=1))
    journal.append([pending, nq])
    journal.append([es])
    assert twin.latest()[es.request_id] == es
    assert journal.lookup(es.request_id) == es
    done = finished(es, NOW + timedelta(seconds=2))
    journal.append([done])
    assert journal.lookup(es.request_id).result_data == {"rows": 1}
    assert journal.lookup("no-such-request") is None
    assert {r.request_id: r.status for r in journal.load_latest()} == {
        es.request_id: Status.SUCCESS, nq.request_id: Status.PENDING}


def test_a_reopened_journal_continues_after_the_highest_seq(twin):
    journal = twin.open()
    es = sample("ES")
    journal.append([es, sample("NQ")])
    journal.append([es.with_changes(attempts=1)])
    journal = twin.reopen(journal)
    journal.append([es.with_changes(attempts=7)])  # a lower seq would lose to the old rows
    assert journal.lookup(es.request_id).attempts == 7
    assert twin.latest()[es.request_id].attempts == 7


def test_restore_gives_live_requests_the_newest_finals_and_counts_them_all(twin):
    journal = twin.open()
    done = [sample(f"D{i}", NOW - timedelta(minutes=30 - i)) for i in range(4)]
    live = sample("LIVE", priority=Priority.IMMEDIATE)
    journal.append([*done, live])
    journal.append([finished(r, r.created_at + timedelta(seconds=1)) for r in reversed(done)])
    journal = twin.reopen(journal)
    restored, finals, counts = journal.load_for_restore(final_limit=2)
    assert [r.request_id for r in restored] == [live.request_id]
    assert [r.request_id for r in finals] == [r.request_id for r in done[2:]]  # oldest first
    ids, build = finals.unbuilt()
    assert build(1).request_id == ids[1] == done[3].request_id
    assert build(1).status is Status.SUCCESS
    assert counts == {
        (Status.SUCCESS, RequestType.FUTURES_SNAPSHOT, Priority.NORMAL): 4,
        (Status.PENDING, RequestType.FUTURES_SNAPSHOT, Priority.IMMEDIATE): 1,
    }
    assert len(journal.load_for_restore(final_limit=0)[1]) == 0


def test_compaction_keeps_the_latest_states_and_seq_keeps_growing(twin):
    journal = twin.open()
    requests = [sample(f"S{i}") for i in range(10)]
    journal.append(requests)
    for round_ in range(1, 6):
        journal.append([r.with_changes(attempts=round_) for r in requests[:5]])
    assert journal.commits_since_compaction == 6
    before = twin.latest()
    report = journal.compact(now=NOW.timestamp())
    assert report["rows_before"] == 35 and report["rows_after"] == 10
    assert report["archived"] == 0
    assert journal.stats()["files"] == report["files"] == 1  # one creation day
    assert journal.commits_since_compaction == 0
    assert twin.latest() == before
    journal.append([requests[0].with_changes(status=Status.CANCELLED)])
    assert journal.lookup(requests[0].request_id).status is Status.CANCELLED


def test_old_finished_requests_leave_the_restart_but_not_the_lookups(twin):
    journal = twin.open()
    old = NOW - timedelta(days=60)
    gone = [sample(f"G{i}", old + timedelta(hours=i)) for i in range(3)]
    live_old, late = sample("LIVE", old), sample("LATE", old)
    journal.append([*gone, live_old, late])
    journal.append([finished(r, r.created_at + timedelta(seconds=5)) for r in gone])
    journal.append([finished(late, NOW - timedelta(days=10), Status.FAILED)])
    report = journal.compact(now=NOW.timestamp())
    assert report["archived"] == 3
    assert journal.compact(now=NOW.timestamp())["archived"] == 0  # nothing moves twice
    journal = twin.reopen(journal)
    live, finals, counts = journal.load_for_restore(final_limit=None)
    assert [r.request_id for r in live] == [live_old.request_id]
    assert [r.request_id for r in finals] == [late.request_id]
    assert sum(counts.values()) == 2  # the archive is not counted
    assert journal.lookup(gone[0].request_id).result_data == {"rows": 1}
    assert len(twin.latest()) == 5  # a reader sees every request, archived ones too
    journal.append([sample("NEW")])  # seq after the archived rows too
    assert journal.lookup(gone[0].request_id).status is Status.SUCCESS


def test_stats_count_this_writers_appends_and_empty_appends_cost_nothing(twin):
    journal = twin.open()
    start = journal.stats()
    assert set(start) >= {"commits", "rows", "version", "files"}
    journal.append([])
    journal.append([sample("ES"), sample("NQ")])
    journal.append([sample("RTY")])
    stats = journal.stats()
    assert (stats["commits"], stats["rows"]) == (2, 3)
    assert stats["version"] == start["version"] + 2
    assert stats["files"] == start["files"] + 2


def test_states_are_copied_in_as_a_table_would(twin):
    journal = twin.open()
    es = sample("ES", status=Status.SUCCESS, result_data={"rows": 1})
    journal.append([es])
    es.result_data["rows"] = 99  # the caller's dict, changed after the append
    assert journal.lookup(es.request_id).result_data == {"rows": 1}


def test_one_writer_at_a_time_and_a_closed_journal_still_reads(twin):
    journal = twin.open()
    es = sample("ES")
    journal.append([es])
    with pytest.raises(TableLocked):
        twin.open()
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        journal.append([sample("NQ")])
    with pytest.raises(StorageError, match="closed"):
        journal.compact(now=NOW.timestamp())
    assert journal.lookup(es.request_id) == es
    successor = twin.open()
    assert [r.request_id for r in successor.load_latest()] == [es.request_id]


def test_a_compaction_on_another_thread_loses_no_append(twin):
    """The queue compacts on its maintenance thread while its commit thread appends."""
    journal = twin.open()
    requests = [sample(f"S{i}") for i in range(20)]
    journal.append(requests)
    compactions = []
    appending = threading.Event()

    def compact_while_appending():
        while not appending.is_set() or not compactions:  # at least one, beside appends
            compactions.append(journal.compact(now=NOW.timestamp()))
            appending.wait(0.001)

    compactor = threading.Thread(target=compact_while_appending)
    compactor.start()
    for round_ in range(1, 41):
        journal.append([r.with_changes(attempts=round_) for r in requests[round_ % 4::4]])
    appending.set()
    compactor.join()
    last_round = {r.request_id: max(k for k in range(1, 41) if k % 4 == i % 4)
                  for i, r in enumerate(requests)}
    assert {rid: r.attempts for rid, r in twin.latest().items()} == last_round
    assert {r.request_id: r.attempts for r in journal.load_latest()} == last_round
