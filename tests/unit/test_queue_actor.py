"""The queue actor's logic without Ray: the plain ``RequestQueue`` class driven by asyncio,
on the in-memory journal (``tests/unit/test_journal_contract.py`` holds it to the Delta
journal's behaviour; tests/integration runs the actor on Delta)."""

from __future__ import annotations

import asyncio
import errno
import json
import time

import pytest

from v6ray.errors import InvalidRequest, RequestTimeout, StorageError, UnknownRequest
from v6ray.pacing.admission import Budget
from v6ray.queue.actor import RequestQueue
from v6ray.queue.config import QueueConfig
from v6ray.queue.memory_journal import MemoryJournals
from v6ray.requests.model import Status


@pytest.fixture
def journals():
    """The queue's journals: rows per data dir that outlive a queue, as a disk does."""
    return MemoryJournals()


@pytest.fixture
def new_queue(journals, data_dir):
    """A ``RequestQueue`` of ``data_dir`` on the memory journals (call again: a restart)."""
    return lambda config=None: RequestQueue(data_dir, config, journal_factory=journals)


@pytest.fixture
def journaled(journals, data_dir):
    """What a fresh reader of the journal sees: the latest state of every request."""
    return lambda: journals.read_requests(data_dir)


def run(coro):
    return asyncio.run(coro)


def test_submit_is_durable_before_it_returns(new_queue, journaled):
    async def scenario():
        queue = new_queue()
        rid = await queue.submit("market_bars", "SPY", 2, {"duration": "5 D"})
        # a fresh reader of the table sees it the moment submit returned
        assert [r.request_id for r in journaled()] == [rid]
        queue.close()  # as the actor process's exit would
        return rid

    rid = run(scenario())
    restarted = new_queue()
    assert restarted.core.get(rid).status is Status.PENDING


def test_submit_many_is_all_or_nothing_and_names_the_item(new_queue, journaled):
    async def scenario():
        queue = new_queue()
        good = {"request_type": "futures_snapshot", "symbol": "ES"}
        with pytest.raises(InvalidRequest) as info:
            await queue.submit_many([good, good, {"request_type": "market_bars", "symbol": ""}])
        assert info.value.field == "items[2].symbol"
        with pytest.raises(InvalidRequest) as info:
            await queue.submit_many([good, {"request_type": "market_bars", "symbol": "SPY",
                                            "parameters": {"bar_size": "7 min"}}])
        assert info.value.field == "items[1].parameters.bar_size"
        with pytest.raises(InvalidRequest) as info:
            await queue.submit_many("not a list")
        assert info.value.field == "items"
        assert queue.core.live_requests() == []
        ids = await queue.submit_many([good, {**good, "symbol": "NQ"}, good])
        assert ids[0] == ids[2] != ids[1]
        return queue

    queue = run(scenario())
    assert len(journaled()) == 2
    assert queue.core.coalesced_total == 1


def test_wait_wakes_on_completion_and_times_out(new_queue):
    async def scenario():
        queue = new_queue()
        rid = await queue.submit("futures_snapshot", "ES")
        with pytest.raises(RequestTimeout):
            await queue.wait(rid, 0.05)
        waiter = asyncio.create_task(queue.wait(rid, 10))
        await asyncio.sleep(0)
        [claimed] = await queue.claim(1, "gw")
        assert await queue.complete(claimed.request_id, "gw", {"rows": 1}) is True
        done = await asyncio.wait_for(waiter, 5)
        assert done.status is Status.SUCCESS and done.result_data == {"rows": 1}
        assert (await queue.wait(rid, 0)).status is Status.SUCCESS  # already final
        with pytest.raises(UnknownRequest):
            await queue.wait("nope", 1)
        assert queue._waiters == {}

    run(scenario())


def test_cancel_wakes_waiters(new_queue):
    async def scenario():
        queue = new_queue()
        rid = await queue.submit("futures_snapshot", "ES")
        waiter = asyncio.create_task(queue.wait(rid, 10))
        await asyncio.sleep(0)
        assert await queue.cancel(rid) is True
        assert (await asyncio.wait_for(waiter, 5)).status is Status.CANCELLED

    run(scenario())


def test_old_final_requests_are_answered_from_the_table(new_queue):
    config = QueueConfig(terminal_cache_size=2)

    async def scenario():
        queue = new_queue(config)
        ids = await queue.submit_many(
            [{"request_type": "futures_snapshot", "symbol": f"S{i}"} for i in range(5)])
        for request in await queue.claim(5, "gw"):
            await queue.complete(request.request_id, "gw", {"n": request.symbol})
        assert len(queue.core._final) == 2
        oldest = await queue.get(ids[0])
        assert oldest.status is Status.SUCCESS and oldest.result_data == {"n": "S0"}
        assert (await queue.wait(ids[0], 1)).status is Status.SUCCESS
        assert await queue.fail(ids[0], "gw", "late", retryable=True) is Status.SUCCESS
        with pytest.raises(UnknownRequest):
            await queue.fail("nope", "gw", "x", retryable=True)
        assert await queue.get("nope") is None
        queue.close()  # as the actor process's exit would
        return ids

    ids = run(scenario())
    restarted = new_queue(config)
    assert len(restarted.core._final) == 2  # bounded on rebuild too
    assert restarted.core.counts  # but every request is counted
    assert sum(n for (s, _, _), n in restarted.core.counts.items() if s is Status.SUCCESS) == 5
    assert restarted.core.get(ids[-1]).status is Status.SUCCESS


def test_restart_keeps_leases_and_queue(new_queue):
    async def first_life():
        queue = new_queue()
        await queue.submit_many([{"request_type": "futures_snapshot", "symbol": s}
                                 for s in ("A", "B", "C")])
        [leased] = await queue.claim(1, "gw")
        queue.close()  # as the actor process's exit would
        return leased

    leased = run(first_life())

    async def second_life():
        queue = new_queue()
        assert (await queue.get(leased.request_id)).lease_owner == "gw"
        assert [r.symbol for r in await queue.claim(5, "gw-2")] == ["B", "C"]
        assert await queue.complete(leased.request_id, "gw", {"ok": True}) is True

    run(second_life())


def test_stats_are_json_serializable(new_queue):
    async def scenario():
        queue = new_queue()
        await queue.submit("futures_snapshot", "ES", 1)
        await queue.submit("market_bars", "SPY", 3)
        [claimed] = await queue.claim(1, "gw")
        await queue.fail(claimed.request_id, "gw", "IB error 200", retryable=False)
        return await queue.stats()

    stats = run(scenario())
    assert json.loads(json.dumps(stats)) == stats
    assert stats["depth"]["FAILED"] == 1 and stats["depth"]["PENDING"] == 1
    assert stats["by_type"]["market_bars"]["PENDING"] == 1
    assert stats["by_priority"]["1"]["FAILED"] == 1
    assert stats["recent_failures"][0]["error_message"] == "IB error 200"
    assert set(stats["journal"]) >= {"commits", "rows", "version", "files"}
    assert stats["journal"]["rows"] == 4
    assert stats["submitted_total"] == 2 and stats["coalesced_total"] == 0


def test_outcomes_in_batches_are_durable_when_answered(new_queue, journaled):
    async def scenario():
        queue = new_queue(QueueConfig(backoff_base=0.0, backoff_jitter=0.0))
        ids = await queue.submit_many(
            [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ", "RTY")])
        await queue.claim(3, "gw")
        assert await queue.complete_many([(ids[0], {"rows": 1})], "gw") == [True]
        statuses = await queue.fail_many(
            [(ids[1], "IB error 200", False), (ids[2], "timeout", True), ("nope", "x", True)],
            "gw")
        assert statuses == [Status.FAILED, Status.PENDING, None]
        latest = {r.request_id: r.status for r in journaled()}
        assert latest == {ids[0]: "SUCCESS", ids[1]: "FAILED", ids[2]: "PENDING"}

    run(scenario())


def test_wait_many_returns_finals_and_none_for_the_rest(new_queue):
    async def scenario():
        queue = new_queue()
        done, open_ = await queue.submit_many(
            [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ")])
        [claimed] = await queue.claim(1, "gw")
        assert claimed.request_id == done
        waiting = asyncio.create_task(queue.wait_many([done, open_], 0.3))
        await asyncio.sleep(0.05)
        await queue.complete(done, "gw", {"rows": 1})
        finals = await asyncio.wait_for(waiting, 5)
        assert finals[0].status is Status.SUCCESS and finals[1] is None
        with pytest.raises(UnknownRequest):
            await queue.wait_many([done, "nope"], 0.1)

    run(scenario())


def test_claim_wait_waits_for_an_arrival_then_claims_it(new_queue):
    async def scenario():
        queue = new_queue()
        assert await queue.claim_wait(5, "gw", None, 0.05) == ([], 0)  # empty: waited, none
        parked = asyncio.create_task(queue.claim_wait(5, "gw", None, 10))
        await asyncio.sleep(0.05)
        assert not parked.done()
        started = time.monotonic()
        rid = await queue.submit("futures_snapshot", "ES")
        claimed, rejected = await asyncio.wait_for(parked, 5)
        assert time.monotonic() - started < 1  # woken by the submit, not by the timeout
        assert [r.request_id for r in claimed] == [rid] and rejected == 0
        assert queue.core.get(rid).status is Status.PROCESSING

    run(scenario())


def test_claim_wait_answers_at_once_when_accept_rejects_the_backlog(new_queue):
    async def scenario():
        queue = new_queue()
        await queue.submit_many(
            [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ")])
        started = time.monotonic()
        nothing = Budget(small_bar=0, large_bar=0, historical=0, lines=0, requests=0)
        assert await queue.claim_wait(5, "gw", nothing, 10) == ([], 2)
        assert time.monotonic() - started < 1
        with pytest.raises(InvalidRequest):
            await queue.claim_wait(-1, "gw")

    run(scenario())


def failing_appends(monkeypatch, queue, errors: list[Exception]) -> list[int]:
    """The journal's appends raise ``errors`` one by one (then work again); returns the
    row counts of the appends that were made durable."""
    journal = queue.committer.journal
    real, written = journal.append, []

    def append(requests):
        if errors:
            raise errors.pop(0)
        written.append(len(requests))
        return real(requests)

    monkeypatch.setattr(journal, "append", append)
    return written


def test_a_resubmit_after_a_failed_commit_is_acknowledged_only_once_durable(
    new_queue, journaled, monkeypatch
):
    async def scenario():
        queue = new_queue(QueueConfig(commit_retries=0))
        failing_appends(monkeypatch, queue, [
            OSError(errno.ENOSPC, "No space left on device"),
            PermissionError(errno.EACCES, "Permission denied"),
        ])
        with pytest.raises(StorageError, match="No space left"):
            await queue.submit("futures_snapshot", "ES")
        # The same request merges into the one in memory, which is not on disk yet: this
        # acknowledgement waits for it, and the journal still fails.
        with pytest.raises(StorageError, match="Permission denied"):
            await queue.submit("futures_snapshot", "ES")
        rid = await queue.submit("futures_snapshot", "ES")  # the disk recovered
        assert [r.request_id for r in journaled()] == [rid]
        queue.close()
        return rid

    rid = run(scenario())
    restarted = new_queue()  # a queue restart keeps what was acknowledged
    assert restarted.core.get(rid).status is Status.PENDING


def test_after_a_failed_commit_every_acknowledgement_waits_for_the_owed_states(
    new_queue, journaled, monkeypatch
):
    async def scenario():
        queue = new_queue(QueueConfig(commit_retries=0))
        [es, nq] = await queue.submit_many(
            [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ")])
        [claimed] = await queue.claim(1, "gw")
        written = failing_appends(monkeypatch, queue, [OSError(errno.EIO, "I/O error")])
        with pytest.raises(StorageError, match="I/O error"):
            await queue.complete(claimed.request_id, "gw", {"rows": 1})
        # A call that changes nothing still answers only once the owed SUCCESS is on disk.
        assert (await queue.wait(es, 1)).status is Status.SUCCESS
        assert written == [1]  # the completion's state, carried by the wait's barrier
        assert await queue.cancel(nq) is True
        queue.close()

    run(scenario())
    latest = {r.symbol: r.status for r in journaled()}
    assert latest == {"ES": "SUCCESS", "NQ": "CANCELLED"}


def test_submit_each_queues_nothing_when_checking_fails_unexpectedly(
    new_queue, journaled, monkeypatch
):
    """Callers of a failed shared call are told it failed: none of them may be queued."""
    from v6ray.queue import actor

    real = actor.request_from_submission

    def breaks_on_the_second(item, **kwargs):
        if item["symbol"] == "NQ":
            raise RuntimeError("a checking bug")
        return real(item, **kwargs)

    monkeypatch.setattr(actor, "request_from_submission", breaks_on_the_second)

    async def scenario():
        queue = new_queue()
        items = [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ", "RTY")]
        with pytest.raises(RuntimeError):
            await queue.submit_each(items)
        assert queue.core.live_requests() == []
        outcomes = await queue.submit_each([items[0], {"request_type": "nope", "symbol": "X"}])
        assert isinstance(outcomes[0], str) and isinstance(outcomes[1], InvalidRequest)
        assert [r.symbol for r in queue.core.live_requests()] == ["ES"]

    run(scenario())
    assert [r.symbol for r in journaled()] == ["ES"]
