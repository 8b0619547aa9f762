"""The request queue's decisions, pure: ordering, leases, retries, dedup (no Ray, no I/O).

Time comes from an injected ``clock`` (epoch seconds) so tests drive it by hand. Every
state change is recorded as the request's new state; the actor drains these changes with
``drain_changes()`` and journals them before it acknowledges the call that made them.

PENDING requests wait in a ``PendingIndex`` (heaps: a claim never sorts the backlog);
PROCESSING ones have their lease deadline in a heap (a renewed, completed or released
lease leaves a stale entry behind, skipped when it surfaces).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from v6ray.backoff import backoff_delay
from v6ray.errors import InvalidRequest
from v6ray.queue.config import QueueConfig
from v6ray.queue.pending import PendingIndex, Popped
from v6ray.requests.model import IBRequest, Priority, RequestType, Status

Clock = Callable[[], float]
Accept = Callable[[IBRequest], bool]

MAX_ERROR_MESSAGE_CHARS = 4000  # an error is a diagnosis, not a log dump
RECENT_FAILURES = 20  # the monitor page lists the last 20
_ONE_MICROSECOND = timedelta(microseconds=1)


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _check_result(result_data: Any, field: str) -> None:
    try:
        json.dumps(result_data)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(field, f"is not JSON-serializable ({exc})") from None


class QueueCore:
    """In-memory state of every live request and the newest final ones."""

    def __init__(
        self,
        config: QueueConfig | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or QueueConfig()
        self._clock = clock
        self._rng = rng or random.Random()
        self._live: dict[str, IBRequest] = {}  # PENDING and PROCESSING
        # Newest last, bounded. A final request restored from the journal may still be its
        # row's index for ``_build_final``: made into the request on first use (most are
        # never asked about, and building thousands would hold a restart up).
        self._final: OrderedDict[str, IBRequest | int] = OrderedDict()
        self._build_final: Callable[[int], IBRequest] | None = None
        self._by_key: dict[str, str] = {}  # dedup_key -> live request_id
        self._pending = PendingIndex(self.config.aging_seconds)
        self._leases: list[tuple[float, int, str]] = []  # (deadline, tie, request_id)
        self._deadline: dict[str, float] = {}  # request_id -> current lease deadline
        self._tie = itertools.count()
        self._last_created: datetime | None = None
        self._changes: list[IBRequest] = []
        self.counts: Counter[tuple[Status, RequestType, Priority]] = Counter()
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=RECENT_FAILURES)
        self.submitted_total = 0
        self.coalesced_total = 0

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        return to_datetime(self._clock())

    def creation_stamp(self) -> datetime:
        """A ``created_at`` strictly later than the previous one (microsecond steps).

        Age orders requests within a priority; unique stamps make that order total and
        the same after a rebuild from the journal, where no submission counter survives.
        """
        stamp = self.now()
        if self._last_created is not None and stamp <= self._last_created:
            stamp = self._last_created + _ONE_MICROSECOND
        self._last_created = stamp
        return stamp

    # ------------------------------------------------------------------ reads

    def get(self, request_id: str) -> IBRequest | None:
        return self._live.get(request_id) or self._final_request(request_id)

    def _final_request(self, request_id: str) -> IBRequest | None:
        found = self._final.get(request_id)
        if found is None or isinstance(found, IBRequest):
            return found
        assert self._build_final is not None
        self._final[request_id] = request = self._build_final(found)  # keeps its place
        return request

    def drain_changes(self) -> list[IBRequest]:
        """The new states since the last drain, oldest first; the caller journals them."""
        changes, self._changes = self._changes, []
        return changes

    def live_requests(self) -> list[IBRequest]:
        return list(self._live.values())

    @property
    def in_flight(self) -> int:
        return len(self._deadline)

    def oldest_pending_created(self) -> float | None:
        """Creation time (epoch seconds) of the oldest PENDING request, ready or delayed."""
        return self._pending.oldest_created(self._live.__getitem__)

    # ------------------------------------------------------------------ submit

    def submit(self, request: IBRequest) -> tuple[str, bool]:
        """Queue a validated PENDING request; returns (request_id, coalesced).

        A request asking IB the same question as a live one coalesces into it; the live
        one takes the more urgent priority of the two.
        """
        existing_id = self._by_key.get(request.dedup_key)
        if existing_id is not None:
            self.coalesced_total += 1
            existing = self._live[existing_id]
            if request.priority < existing.priority:
                raised = replace(existing, priority=request.priority, updated_at=self.now())
                self._store(raised, existing)
                waiting = existing_id in self._pending
                if waiting and not self._pending.is_delayed(raised, self._clock()):
                    self._pending.add_ready(raised)  # the entry in the old level turns stale
            return existing_id, True
        self.submitted_total += 1
        self._store(request, None)
        self._by_key[request.dedup_key] = request.request_id
        self._enqueue(request, self._clock())
        return request.request_id, False

    # ------------------------------------------------------------------ claim

    def claim(self, n: int, worker_id: str, accept: Accept | None = None) -> list[IBRequest]:
        """Lease up to ``n`` claimable requests to ``worker_id``, best first.

        ``accept`` is asked once about each candidate, in order, and only about requests
        that would otherwise be handed out; one it rejects stays queued in place and the
        scan goes on behind it. If ``accept`` raises, the scan stops: the claims made so far
        are returned, or the error is raised when there are none.
        """
        now = self._clock()
        self.tick(now)
        claimed: list[IBRequest] = []
        skipped: list[Popped] = []
        scanned = 0
        try:
            while len(claimed) < n and scanned < self.config.claim_scan_limit:
                best = self._pending.pop_best(now)
                if best is None:
                    break
                scanned += 1
                request = self._live[best[1][3]]
                try:
                    accepted = accept is None or accept(request)
                except Exception:
                    skipped.append(best)
                    if claimed:
                        break
                    raise
                if not accepted:
                    skipped.append(best)
                    continue
                claimed.append(self._lease(request, worker_id, now))
        finally:
            for popped in skipped:
                self._pending.put_back(popped)
        return claimed

    def _lease(self, request: IBRequest, worker_id: str, now: float) -> IBRequest:
        rid = request.request_id
        self._pending.discard(rid)
        deadline = now + self.config.lease_seconds
        stamp = to_datetime(now)
        leased = replace(
            request,
            status=Status.PROCESSING,
            attempts=request.attempts + 1,
            lease_owner=worker_id,
            lease_expires_at=to_datetime(deadline),
            not_before=None,
            updated_at=stamp,
        )
        self._store(leased, request)
        self._set_deadline(rid, deadline)
        return leased

    # ------------------------------------------------------------------ outcomes

    def complete(self, request_id: str, worker_id: str, result_data: dict[str, Any]) -> bool:
        """SUCCESS if ``worker_id`` holds the lease; repeating a completion is True again."""
        _check_result(result_data, "result_data")
        now = self._clock()
        self.tick(now)
        return self._complete_checked(request_id, worker_id, result_data, now)

    def complete_many(
        self, outcomes: Iterable[tuple[str, dict[str, Any]]], worker_id: str
    ) -> list[bool]:
        """``complete`` for each (request_id, result_data); all checked before any changes."""
        outcomes = list(outcomes)
        for index, (_, result_data) in enumerate(outcomes):
            _check_result(result_data, f"outcomes[{index}].result_data")
        now = self._clock()
        self.tick(now)
        return [self._complete_checked(rid, worker_id, data, now) for rid, data in outcomes]

    def _complete_checked(
        self, request_id: str, worker_id: str, result_data: dict[str, Any], now: float
    ) -> bool:
        request = self._live.get(request_id)
        if request is None:
            done = self._final_request(request_id)
            return bool(done and done.status is Status.SUCCESS and done.lease_owner == worker_id)
        if not self._holds(request, worker_id):
            return False
        self._finish(
            replace(
                request,
                status=Status.SUCCESS,
                result_data=dict(result_data) if result_data is not None else None,
                error_message=None,
                lease_expires_at=None,
                updated_at=to_datetime(now),
            ),
            request,
        )
        return True

    def fail(
        self, request_id: str, worker_id: str, error_message: str, retryable: bool
    ) -> Status | None:
        """Record a failed attempt; returns the new status (None for an unknown request).

        Retryable failures wait out a capped, jittered exponential backoff and are queued
        again until ``max_attempts`` claims were spent; then, or when not retryable, the
        request is FAILED (dead letter) with the error kept. A worker that does not hold
        the lease changes nothing and gets the current status back.
        """
        now = self._clock()
        self.tick(now)
        request = self._live.get(request_id)
        if request is None:
            done = self._final_request(request_id)
            return done.status if done else None
        if not self._holds(request, worker_id):
            return request.status
        message = str(error_message)[:MAX_ERROR_MESSAGE_CHARS]
        stamp = to_datetime(now)
        self._drop_deadline(request_id)
        if retryable and request.attempts < self.config.max_attempts:
            delay = backoff_delay(
                request.attempts,
                base=self.config.backoff_base,
                cap=self.config.backoff_cap,
                jitter=self.config.backoff_jitter,
                rng=self._rng,
            )
            retry = replace(
                request,
                status=Status.PENDING,
                error_message=message,
                lease_owner=None,
                lease_expires_at=None,
                not_before=to_datetime(now + delay),
                updated_at=stamp,
            )
            self._store(retry, request)
            self._enqueue(retry, now)
        else:
            retry = replace(
                request, status=Status.FAILED, error_message=message,
                lease_expires_at=None, updated_at=stamp,
            )
            self._finish(retry, request)
        self._note_failure(retry)
        return retry.status

    def release(self, request_ids: Iterable[str], worker_id: str) -> int:
        """Give leased requests back unexecuted (no attempt counted); returns how many."""
        now = self._clock()
        self.tick(now)
        released = 0
        for rid in request_ids:
            request = self._live.get(rid)
            if request is None or not self._holds(request, worker_id):
                continue
            self._drop_deadline(rid)
            back = replace(
                request,
                status=Status.PENDING,
                attempts=max(0, request.attempts - 1),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=to_datetime(now),
            )
            self._store(back, request)
            self._enqueue(back, now)
            released += 1
        return released

    def renew(self, request_ids: Iterable[str], worker_id: str) -> int:
        """Extend the leases ``worker_id`` still holds by ``lease_seconds``; returns how many."""
        now = self._clock()
        self.tick(now)
        renewed = 0
        for rid in request_ids:
            request = self._live.get(rid)
            if request is None or not self._holds(request, worker_id):
                continue
            deadline = now + self.config.lease_seconds
            self._set_deadline(rid, deadline)
            renewed_request = replace(
                request, lease_expires_at=to_datetime(deadline), updated_at=to_datetime(now)
            )
            self._store(renewed_request, request)
            renewed += 1
        return renewed

    def cancel(self, request_id: str) -> bool:
        """CANCELLED if still PENDING (True); otherwise nothing changes (False)."""
        request = self._live.get(request_id)
        if request is None or request.status is not Status.PENDING:
            return False
        self._finish(replace(request, status=Status.CANCELLED, updated_at=self.now()), request)
        return True

    # ------------------------------------------------------------------ time passing

    def tick(self, now: float | None = None) -> None:
        """Expire due leases and move due retries to the ready heaps."""
        now = self._clock() if now is None else now
        while self._leases and self._leases[0][0] <= now:
            deadline, _, rid = heapq.heappop(self._leases)
            if self._deadline.get(rid) != deadline:
                continue  # renewed, completed or released since
            del self._deadline[rid]
            self._expire(self._live[rid], now)
        self._pending.promote_due(now, self._live.__getitem__)

    def expire_predecessor_leases(self, worker_prefix: str, worker_id: str) -> int:
        """End now the leases of earlier incarnations of a singleton worker.

        ``worker_id`` starts with ``worker_prefix``; any other holder with that prefix is a
        dead predecessor (the named gateway actor restarted), so its leases are treated as
        expired at once (an attempt counted, as on any lost lease) instead of after
        ``lease_seconds``. Returns how many requests were freed.
        """
        now = self._clock()
        orphaned = [
            request
            for request in self._live.values()
            if request.status is Status.PROCESSING
            and request.lease_owner is not None
            and request.lease_owner != worker_id
            and request.lease_owner.startswith(worker_prefix)
        ]
        for request in orphaned:
            self._drop_deadline(request.request_id)
            self._expire(request, now)
        return len(orphaned)

    def _expire(self, request: IBRequest, now: float) -> None:
        """A lost lease counts as an attempt; after ``max_attempts`` it is a dead letter."""
        stamp = to_datetime(now)
        if request.attempts >= self.config.max_attempts:
            message = (
                f"lease of {request.lease_owner} expired; attempts exhausted "
                f"({request.attempts}/{self.config.max_attempts})"
            )
            dead = replace(request, status=Status.FAILED, error_message=message,
                           lease_expires_at=None, updated_at=stamp)
            self._finish(dead, request)
            self._note_failure(dead)
            return
        back = replace(request, status=Status.PENDING, lease_owner=None,
                       lease_expires_at=None, updated_at=stamp)
        self._store(back, request)
        self._enqueue(back, now)

    # ------------------------------------------------------------------ rebuild

    def restore(
        self,
        requests: Iterable[IBRequest],
        counts: Counter[tuple[Status, RequestType, Priority]] | None = None,
        unbuilt_finals: tuple[list[str], Callable[[int], IBRequest]] | None = None,
    ) -> None:
        """Load the latest state of each request (from the journal) into an empty core.

        ``counts``, when given, are the counts by (status, type, priority) of a larger set
        than ``requests`` (the journal's finished requests beyond the memory cache are
        counted, not loaded); otherwise ``requests`` are counted. ``unbuilt_finals``:
        the ids of final requests, the oldest first, newer than any final in ``requests``,
        and ``build(index)`` making the request of the id at ``index``; they are cached
        unbuilt, and built when first asked for.
        """
        finals: list[IBRequest] = []
        live: list[IBRequest] = []
        for request in requests:
            if counts is None:
                self.counts[(request.status, request.request_type, request.priority)] += 1
            (finals if request.is_final else live).append(request)
        if counts is not None:
            self.counts.update(counts)
        finals.sort(key=lambda r: r.updated_at)
        for request in finals[len(finals) - self.config.terminal_cache_size:]:
            self._final[request.request_id] = request
        if unbuilt_finals is not None and self.config.terminal_cache_size:
            request_ids, self._build_final = unbuilt_finals
            self._final.update(zip(request_ids, range(len(request_ids)), strict=True))
        while len(self._final) > self.config.terminal_cache_size:
            self._final.popitem(last=False)
        now = self._clock()
        for request in sorted(live, key=lambda r: r.created_at):
            self._live[request.request_id] = request
            self._by_key[request.dedup_key] = request.request_id
            if request.status is Status.PENDING:
                self._enqueue(request, now)
            else:  # PROCESSING keeps its owner; an expired lease is handled by tick()
                expires = request.lease_expires_at
                self._set_deadline(request.request_id, expires.timestamp() if expires else now)
        created = [r.created_at for r in itertools.chain(live, finals)]
        self._last_created = max(created) if created else None

    # ------------------------------------------------------------------ internals

    def _holds(self, request: IBRequest, worker_id: str) -> bool:
        return request.status is Status.PROCESSING and request.lease_owner == worker_id

    def _store(self, new: IBRequest, old: IBRequest | None) -> None:
        if old is not None:
            self.counts[(old.status, old.request_type, old.priority)] -= 1
        self.counts[(new.status, new.request_type, new.priority)] += 1
        self._live[new.request_id] = new
        self._changes.append(new)

    def _finish(self, new: IBRequest, old: IBRequest) -> None:
        rid = new.request_id
        self._store(new, old)
        del self._live[rid]
        if self._by_key.get(new.dedup_key) == rid:
            del self._by_key[new.dedup_key]
        self._pending.discard(rid)
        self._drop_deadline(rid)
        if self.config.terminal_cache_size:
            self._final[rid] = new
            while len(self._final) > self.config.terminal_cache_size:
                self._final.popitem(last=False)

    def _enqueue(self, request: IBRequest, now: float) -> None:
        self._pending.add(request, now)

    def _set_deadline(self, rid: str, deadline: float) -> None:
        self._deadline[rid] = deadline
        heapq.heappush(self._leases, (deadline, next(self._tie), rid))

    def _drop_deadline(self, rid: str) -> None:
        self._deadline.pop(rid, None)  # its heap entry turns stale

    def _note_failure(self, request: IBRequest) -> None:
        self.recent_failures.append(
            {
                "request_id": request.request_id,
                "request_type": request.request_type.value,
                "symbol": request.symbol,
                "status": request.status.value,
                "attempts": request.attempts,
                "error_message": request.error_message,
                "updated_at": request.updated_at.isoformat(),
            }
        )
