"""The pure queue core: ordering, aging, leases, retries, dedup, cancel, accept predicates."""

from __future__ import annotations

import random
import time

import pytest

from tests.helpers import FakeClock
from v6ray.errors import InvalidRequest
from v6ray.queue.config import QueueConfig
from v6ray.queue.core import QueueCore
from v6ray.queue.stats import queue_stats
from v6ray.requests.model import Priority, Status, new_request

T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make_core(clock: FakeClock, **config) -> QueueCore:
    return QueueCore(QueueConfig(**config), clock=clock, rng=random.Random(7))


def submit(core: QueueCore, symbol: str, priority: int = 2, rtype: str = "futures_snapshot",
           **params) -> str:
    request = new_request(rtype, symbol, priority=priority, parameters=params or None,
                          now=core.creation_stamp())
    rid, _ = core.submit(request)
    return rid


def symbols(requests) -> list[str]:
    return [r.symbol for r in requests]


# ---------------------------------------------------------------- ordering and aging


def test_claims_priority_first_then_oldest_first(clock):
    core = make_core(clock)
    for symbol, priority in [("B1", 3), ("N1", 2), ("I1", 1), ("N2", 2), ("B2", 3), ("I2", 1)]:
        submit(core, symbol, priority)
        clock.advance(0.001)
    assert symbols(core.claim(10, "w")) == ["I1", "I2", "N1", "N2", "B1", "B2"]


def test_same_instant_submissions_keep_submission_order(clock):
    core = make_core(clock)
    names = [f"S{i}" for i in range(50)]
    for name in names:  # the clock does not move: creation stamps still differ
        submit(core, name)
    assert symbols(core.claim(100, "w")) == names


def test_background_ages_one_level_per_aging_period(clock):
    core = make_core(clock, aging_seconds=10)
    submit(core, "BG", 3)
    clock.advance(10.5)  # BG now competes as NORMAL and is older than any NORMAL
    submit(core, "NEWN", 2)
    submit(core, "NEWI", 1)
    assert symbols(core.claim(3, "w")) == ["NEWI", "BG", "NEWN"]


def test_background_is_not_starved_by_a_stream_of_urgent_work(clock):
    core = make_core(clock, aging_seconds=5)
    submit(core, "BG", 3)
    served = []
    for i in range(100):  # one urgent request arrives and one is served every second
        submit(core, f"U{i}", 1)
        clock.advance(0.5)
        served += symbols(core.claim(1, "w"))
        clock.advance(0.5)
    assert "BG" in served
    assert served.index("BG") <= 11  # 2 aging periods (10 s) plus the one in hand


# ---------------------------------------------------------------- leases


def test_claim_leases_and_counts_attempts(clock):
    core = make_core(clock, lease_seconds=30)
    rid = submit(core, "ES")
    [leased] = core.claim(5, "gw-1")
    assert leased.request_id == rid
    assert leased.status is Status.PROCESSING
    assert leased.attempts == 1
    assert leased.lease_owner == "gw-1"
    assert leased.lease_expires_at.timestamp() == pytest.approx(T0 + 30)
    assert core.claim(5, "gw-2") == []  # leased requests are not claimable


def test_expired_lease_makes_request_claimable_again_and_counts_the_attempt(clock):
    core = make_core(clock, lease_seconds=30)
    rid = submit(core, "ES")
    core.claim(1, "gw-1")
    clock.advance(29.9)
    assert core.claim(1, "gw-2") == []
    clock.advance(0.2)
    [again] = core.claim(1, "gw-2")
    assert again.request_id == rid
    assert again.attempts == 2
    assert again.lease_owner == "gw-2"
    # the first worker lost its lease: its late answers change nothing
    assert core.complete(rid, "gw-1", {"rows": 1}) is False
    assert core.fail(rid, "gw-1", "boom", retryable=False) is Status.PROCESSING
    assert core.get(rid).lease_owner == "gw-2"


def test_a_restarted_worker_ends_its_predecessors_leases_at_once(clock):
    core = make_core(clock, lease_seconds=60)
    mine, theirs, other = submit(core, "ES"), submit(core, "NQ"), submit(core, "RTY")
    core.claim(1, "gateway-17-old")  # ES, then the incarnation dies
    core.claim(1, "gateway-17-new")  # NQ, held by the new incarnation
    core.claim(1, "gateway-99-aaaa")  # RTY, another worker family: untouched
    assert core.expire_predecessor_leases("gateway-17-", "gateway-17-new") == 1
    assert core.get(mine).status is Status.PENDING and core.get(mine).lease_owner is None
    assert core.get(theirs).lease_owner == "gateway-17-new"
    assert core.get(other).lease_owner == "gateway-99-aaaa"
    [again] = core.claim(1, "gateway-17-new")  # claimable now, not 60 s later
    assert again.request_id == mine and again.attempts == 2  # the lost attempt counts
    assert core.complete(mine, "gateway-17-old", {"rows": 1}) is False
    assert core.expire_predecessor_leases("gateway-17-", "gateway-17-new") == 0


def test_expiry_after_max_attempts_dead_letters(clock):
    core = make_core(clock, lease_seconds=10, max_attempts=2)
    rid = submit(core, "ES")
    for _ in range(2):
        assert len(core.claim(1, "gw")) == 1
        clock.advance(11)
    core.tick()
    request = core.get(rid)
    assert request.status is Status.FAILED
    assert "attempts exhausted" in request.error_message
    assert core.claim(1, "gw") == []


def test_complete_after_expiry_is_refused_even_if_nobody_reclaimed(clock):
    core = make_core(clock, lease_seconds=10)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    clock.advance(10.5)
    assert core.complete(rid, "gw", {}) is False
    assert core.get(rid).status is Status.PENDING


def test_renew_extends_only_leases_still_held(clock):
    core = make_core(clock, lease_seconds=10)
    a, b = submit(core, "A"), submit(core, "B")
    core.claim(2, "gw")
    clock.advance(8)
    assert core.renew([a, "unknown"], "gw") == 1
    assert core.renew([b], "other-worker") == 0
    clock.advance(5)  # b expired at T0+10, a now lasts until T0+18
    [reclaimed] = core.claim(5, "gw-2")
    assert reclaimed.request_id == b
    assert core.get(a).status is Status.PROCESSING
    assert core.complete(a, "gw", {"ok": True}) is True


def test_release_gives_back_without_counting_an_attempt(clock):
    core = make_core(clock)
    a, b = submit(core, "A"), submit(core, "B")
    core.claim(2, "gw")
    assert core.release([a, b], "someone-else") == 0
    assert core.release([a, b], "gw") == 2
    again = core.claim(2, "gw")
    assert [r.request_id for r in again] == [a, b]
    assert [r.attempts for r in again] == [1, 1]


def test_complete_by_the_holder_succeeds_and_is_idempotent(clock):
    core = make_core(clock)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    assert core.complete(rid, "intruder", {"rows": 3}) is False
    assert core.get(rid).status is Status.PROCESSING
    assert core.complete(rid, "gw", {"rows": 3}) is True
    done = core.get(rid)
    assert done.status is Status.SUCCESS
    assert done.result_data == {"rows": 3}
    assert core.complete(rid, "gw", {"rows": 3}) is True  # a retried call, same answer
    assert core.complete(rid, "intruder", {"rows": 3}) is False
    assert core.complete("no-such-id", "gw", {}) is False


def test_complete_rejects_result_data_that_is_not_json(clock):
    core = make_core(clock)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    with pytest.raises(InvalidRequest) as info:
        core.complete(rid, "gw", {"when": object()})
    assert info.value.field == "result_data"
    assert core.get(rid).status is Status.PROCESSING


# ---------------------------------------------------------------- retries


def test_retryable_failure_backs_off_then_retries(clock):
    core = make_core(clock, backoff_base=2.0, backoff_cap=60, backoff_jitter=0.5)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    assert core.fail(rid, "gw", "IB error 162", retryable=True) is Status.PENDING
    waiting = core.get(rid)
    delay = waiting.not_before.timestamp() - T0
    assert 1.0 <= delay <= 2.0  # base * 2**0 with up to half of it jittered off
    assert waiting.error_message == "IB error 162"
    assert core.claim(1, "gw") == []
    clock.advance(delay + 0.001)
    [again] = core.claim(1, "gw")
    assert again.attempts == 2


def test_backoff_grows_and_is_capped(clock):
    core = make_core(clock, backoff_base=1.0, backoff_cap=4.0, backoff_jitter=0.0,
                     max_attempts=10)
    rid = submit(core, "ES")
    delays = []
    for _ in range(5):
        core.claim(1, "gw")
        core.fail(rid, "gw", "try again", retryable=True)
        delay = core.get(rid).not_before.timestamp() - clock.now
        delays.append(round(delay, 6))
        clock.advance(delay)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_retries_exhausted_is_a_dead_letter_with_the_error(clock):
    core = make_core(clock, max_attempts=3, backoff_base=0.0)
    rid = submit(core, "ES")
    statuses = []
    for i in range(3):
        core.claim(1, "gw")
        statuses.append(core.fail(rid, "gw", f"error {i}", retryable=True))
    assert statuses == [Status.PENDING, Status.PENDING, Status.FAILED]
    dead = core.get(rid)
    assert dead.error_message == "error 2"
    assert dead.attempts == 3
    assert core.claim(1, "gw") == []
    assert core.fail(rid, "gw", "late", retryable=True) is Status.FAILED
    assert core.get(rid).error_message == "error 2"


def test_non_retryable_failure_is_final_at_once(clock):
    core = make_core(clock)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    assert core.fail(rid, "gw", "IB error 200: no security definition", retryable=False) \
        is Status.FAILED
    assert core.fail("unknown", "gw", "x", retryable=False) is None
    [failure] = queue_stats(core, clock.now)["recent_failures"]
    assert failure["request_id"] == rid
    assert failure["error_message"].startswith("IB error 200")


# ---------------------------------------------------------------- dedup and cancel


def test_identical_live_submissions_coalesce(clock):
    core = make_core(clock)
    first = submit(core, "SPY", 2, "market_bars", duration="5 D")
    same = submit(core, "spy", 2, "market_bars", duration="5 D", bar_size="1 hour")
    other = submit(core, "SPY", 2, "market_bars", duration="2 D")
    assert same == first  # normalized parameters and symbol are equal
    assert other != first
    core.claim(1, "gw")
    assert submit(core, "SPY", 2, "market_bars", duration="5 D") == first  # PROCESSING too
    core.complete(first, "gw", {})
    assert submit(core, "SPY", 2, "market_bars", duration="5 D") != first  # final: new request
    assert core.submitted_total == 3 and core.coalesced_total == 2


def test_coalescing_raises_priority_to_the_more_urgent_submit(clock):
    core = make_core(clock)
    bg = submit(core, "BG", 3)
    submit(core, "N1", 2)
    assert submit(core, "BG", 1) == bg
    assert core.get(bg).priority is Priority.IMMEDIATE
    assert submit(core, "BG", 3) == bg
    assert core.get(bg).priority is Priority.IMMEDIATE  # never lowered
    assert symbols(core.claim(10, "w")) == ["BG", "N1"]  # claimed once, not twice


def test_cancel_only_pending(clock):
    core = make_core(clock)
    a, b = submit(core, "A"), submit(core, "B")
    [claimed] = core.claim(1, "gw")
    assert claimed.request_id == a
    assert core.cancel(a) is False
    assert core.cancel(b) is True
    assert core.get(b).status is Status.CANCELLED
    assert core.cancel(b) is False
    assert core.cancel("unknown") is False
    assert core.claim(5, "gw") == []
    assert submit(core, "B") != b  # a cancelled request no longer coalesces


# ---------------------------------------------------------------- accept predicate


class Budget:
    """A stateful accept predicate like the gateway's pacer: accepts ``n`` market_bars."""

    def __init__(self, bars: int) -> None:
        self.bars = bars
        self.seen: list[str] = []

    def __call__(self, request) -> bool:
        self.seen.append(request.symbol)
        if request.request_type.value != "market_bars":
            return True
        if self.bars == 0:
            return False
        self.bars -= 1
        return True


def test_rejected_candidates_do_not_block_those_behind(clock):
    core = make_core(clock)
    for i in range(3):
        submit(core, f"BAR{i}", 1, "market_bars", duration=f"{i + 1} D")
    submit(core, "ES", 2)
    budget = Budget(bars=1)
    claimed = core.claim(10, "gw", accept=budget)
    assert symbols(claimed) == ["BAR0", "ES"]
    assert budget.seen == ["BAR0", "BAR1", "BAR2", "ES"]  # each candidate asked once
    # rejected ones keep their place at the head of the queue
    assert symbols(core.claim(10, "gw", accept=Budget(bars=5))) == ["BAR1", "BAR2"]


def test_accept_is_only_asked_about_claimable_requests(clock):
    core = make_core(clock, backoff_base=10)
    waiting = submit(core, "WAIT")
    core.claim(1, "gw")
    core.fail(waiting, "gw", "later", retryable=True)
    submit(core, "LEASED")
    core.claim(1, "gw")
    submit(core, "READY")
    budget = Budget(bars=0)
    assert symbols(core.claim(1, "gw", accept=budget)) == ["READY"]
    assert budget.seen == ["READY"]
    submit(core, "AFTER")
    budget = Budget(bars=0)
    core.claim(0, "gw", accept=budget)
    assert budget.seen == []  # nothing asked when nothing can be handed out


def test_accept_that_raises_loses_no_request(clock):
    core = make_core(clock)
    submit(core, "A")
    submit(core, "B")

    def broken(request):
        raise RuntimeError("pacer bug")

    with pytest.raises(RuntimeError):
        core.claim(2, "gw", accept=broken)
    assert symbols(core.claim(2, "gw")) == ["A", "B"]


def test_claim_with_a_large_backlog_does_not_scan_it(clock):
    core = make_core(clock)
    for i in range(100_000):
        core.submit(new_request("futures_snapshot", f"S{i}", priority=1 + i % 3,
                                now=core.creation_stamp()))
    started = time.perf_counter()
    for _ in range(100):
        assert len(core.claim(10, "gw")) == 10
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # ~1,000 claims from 100k; sorting per claim would take far longer


def test_claim_scan_limit_bounds_the_predicate_calls(clock):
    core = make_core(clock, claim_scan_limit=20)
    for i in range(100):
        submit(core, f"BAR{i}", 1, "market_bars", duration=f"{i + 1} D")
    budget = Budget(bars=0)
    assert core.claim(5, "gw", accept=budget) == []
    assert len(budget.seen) == 20


# ---------------------------------------------------------------- journal hooks, rebuild, stats


def test_every_change_is_reported_once_in_order(clock):
    core = make_core(clock)
    rid = submit(core, "ES")
    core.claim(1, "gw")
    core.complete(rid, "gw", {"rows": 1})
    assert [r.status for r in core.drain_changes()] == [
        Status.PENDING, Status.PROCESSING, Status.SUCCESS]
    assert core.drain_changes() == []
    submit(core, "ES")  # new request
    submit(core, "ES")  # coalesced, same priority: no state change
    assert len(core.drain_changes()) == 1


def test_restore_rebuilds_queue_leases_and_finals(clock):
    core = make_core(clock, lease_seconds=10)
    ids = [submit(core, s, p) for s, p in [("A", 2), ("B", 1), ("C", 3), ("D", 2)]]
    core.claim(1, "gw")  # B
    done = core.claim(1, "gw")[0]  # A
    core.complete(done.request_id, "gw", {"rows": 2})
    latest = {r.request_id: r for r in core.drain_changes()}

    rebuilt = make_core(clock, lease_seconds=10)
    rebuilt.restore(latest.values())
    assert rebuilt.get(ids[0]).status is Status.SUCCESS
    assert rebuilt.get(ids[1]).lease_owner == "gw"
    assert submit(rebuilt, "C", 3) == ids[2]  # dedup index rebuilt
    assert symbols(rebuilt.claim(5, "gw")) == ["D", "C"]
    clock.advance(6)
    assert rebuilt.renew([ids[2], ids[3]], "gw") == 2
    clock.advance(5)  # B's lease, restored, expires on schedule; the renewed ones do not
    assert symbols(rebuilt.claim(5, "gw")) == ["B"]
    assert submit(rebuilt, "E") not in ids


def test_stats_counts(clock):
    core = make_core(clock)
    submit(core, "A", 1)
    submit(core, "B", 3, "market_bars")
    clock.advance(4)
    submit(core, "C", 2)
    core.claim(1, "gw")
    stats = queue_stats(core, clock.now)
    assert stats["depth"]["PENDING"] == 2 and stats["depth"]["PROCESSING"] == 1
    assert stats["by_type"]["market_bars"]["PENDING"] == 1
    assert stats["by_priority"]["1"]["PROCESSING"] == 1
    assert stats["in_flight"] == 1
    assert stats["oldest_pending_age_s"] == pytest.approx(4.0)
    assert stats["submitted_total"] == 3


def test_cancelling_deep_in_a_backlog_does_not_grow_the_heaps_without_bound(clock):
    core = make_core(clock)
    for i in range(20_000):
        core.cancel(submit(core, f"S{i}"))
    submit(core, "KEEP")
    assert core._pending.heap_entries <= 2 * 1 + 1024 + 1
    assert symbols(core.claim(5, "gw")) == ["KEEP"]


def test_complete_many_completes_each_holder_and_checks_every_result_first(clock):
    core = make_core(clock)
    a, b = submit(core, "ES"), submit(core, "NQ")
    core.claim(2, "gw")
    core.drain_changes()
    with pytest.raises(InvalidRequest) as info:
        core.complete_many([(a, {"rows": 1}), (b, {"bad": object()})], "gw")
    assert info.value.field == "outcomes[1].result_data"
    assert core.get(a).status is Status.PROCESSING and core.drain_changes() == []  # nothing
    assert core.complete_many([(a, {"rows": 1}), (b, {"rows": 2}), ("nope", {})], "gw") == [
        True, True, False]
    assert [r.status for r in core.drain_changes()] == [Status.SUCCESS, Status.SUCCESS]
    assert core.get(b).result_data == {"rows": 2}
    assert core.complete_many([(a, {"rows": 1})], "gw") == [True]  # idempotent
    assert core.complete_many([(a, {"rows": 1})], "other") == [False]
