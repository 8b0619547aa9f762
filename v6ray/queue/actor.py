"""The ``RequestQueue`` Ray actor: a thin async shell over the pure core and the journal.

Every method changes the core synchronously (no ``await`` in between, so each call is
atomic on the actor's event loop), then awaits the group commit of the changes it made
before it answers: nothing is acknowledged before it is durable in ``ib_requests``.
On (re)start the actor rebuilds the core from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import ray

from v6ray.actors.loops import Supervisor
from v6ray.constants import NAMESPACE, QUEUE_ACTOR
from v6ray.errors import InvalidRequest, RequestTimeout, UnknownRequest
from v6ray.observability.requests import RequestObserver
from v6ray.pacing.admission import Budget
from v6ray.queue.config import QueueConfig
from v6ray.queue.core import QueueCore
from v6ray.queue.group_commit import GroupCommitter
from v6ray.queue.journal import Journal
from v6ray.queue.journal_api import JournalFactory
from v6ray.queue.stats import queue_stats
from v6ray.requests.model import (
    IBRequest,
    Priority,
    Status,
    check_items,
    new_request,
    request_from_submission,
    requests_from_submissions,
)
from v6ray.service.process_priority import run_at_normal_priority
from v6ray.storage import location

log = logging.getLogger(__name__)

# Async actors run every call on one event loop; waits park here, so allow plenty.
MAX_CONCURRENCY = 10_000
HOUSEKEEPING = "housekeeping"  # the supervised loop expiring leases and waking retries


class RequestQueue:
    """The one durable priority queue of every IB request (plain class; Ray-free to build)."""

    def __init__(
        self,
        data_dir: str,
        config: QueueConfig | None = None,
        *,
        journal_factory: JournalFactory = Journal.for_queue,
    ) -> None:
        """``journal_factory`` opens the journal of ``data_dir`` (the Delta table
        ``ib_requests`` by default; tests pass ``MemoryJournals``)."""
        run_at_normal_priority("RequestQueue")  # every claim and submit waits on it
        self.config = config or QueueConfig()
        self.data_dir = data_dir
        journal = journal_factory(data_dir, self.config)
        self.core = QueueCore(self.config)
        # Only live requests become objects. As many finished ones as the core keeps in
        # memory stay rows until asked for; older ones are only counted (get() reads them
        # from the journal). Counts cover the hot journal: archived requests are not in them.
        live, finals, counts = journal.load_for_restore(self.config.terminal_cache_size)
        self.core.restore(live, counts, finals.unbuilt())
        # A restored backlog is large and long-lived: keep the collector from rescanning it
        # in every full collection (a pause of ~90 ms per 30,000 requests, measured).
        # It holds no reference cycles, so nothing collectable is frozen with it.
        gc.collect()
        gc.freeze()
        self.committer = GroupCommitter(
            journal,
            compact_every_commits=self.config.compact_every_commits,
            min_interval=self.config.commit_interval_seconds,
        )
        self._waiters: dict[str, asyncio.Event] = {}
        self._waiter_counts: Counter[str] = Counter()
        # Housekeeping starts with the first call (``__init__`` runs before the actor's
        # event loop does); the gateway's claims make that call soon after a restart.
        self._loops = Supervisor()
        # Resolved (and replaced) when a journaled change makes a request PENDING: wakes a
        # gateway parked in claim_wait instead of letting it poll an empty queue.
        self._arrival: asyncio.Future[None] | None = None
        self._observer = RequestObserver()  # log lines and metrics of every state change

    def __repr__(self) -> str:  # the name the Ray dashboard shows for this actor
        return f"RequestQueue[journal {self.data_dir}]"

    # ------------------------------------------------------------------ producers

    async def submit(
        self,
        request_type: Any,
        symbol: Any,
        priority: Any = Priority.NORMAL,
        parameters: Any = None,
        result_table: Any = None,
    ) -> str:
        request = new_request(
            request_type,
            symbol,
            priority=priority,
            parameters=parameters,
            result_table=result_table,
            now=self.core.creation_stamp(),
        )
        request_id, _ = self.core.submit(request)
        await self._commit()
        return request_id

    async def submit_many(self, items: Sequence[Any]) -> list[str]:
        """All or nothing: every item is validated before any is queued."""
        requests = requests_from_submissions(items, stamp=self.core.creation_stamp)
        submit = self.core.submit
        request_ids = [submit(request)[0] for request in requests]
        await self._commit()
        return request_ids

    async def submit_each(self, items: Sequence[Any]) -> list[str | InvalidRequest]:
        """Independent submits in one call and one commit: per item, its request id or the
        ``InvalidRequest`` it raised (returned, not raised: the others are queued). The
        client sends this when several of its threads submit at the same time.

        Every item is checked before any is queued: should checking fail in any other way,
        the call fails for all its callers and has queued none of them.
        """
        check_items(items)
        checked: list[IBRequest | InvalidRequest] = []
        for item in items:
            try:
                checked.append(request_from_submission(item, now=self.core.creation_stamp()))
            except InvalidRequest as exc:
                checked.append(exc)
        outcomes = [
            outcome if isinstance(outcome, InvalidRequest) else self.core.submit(outcome)[0]
            for outcome in checked
        ]
        await self._commit()
        return outcomes

    async def cancel(self, request_id: str) -> bool:
        cancelled = self.core.cancel(request_id)
        await self._commit()
        return cancelled

    # ------------------------------------------------------------------ the gateway

    @ray.method(max_task_retries=0)  # a retried claim would lease requests nobody receives
    async def claim(
        self, n: int, worker_id: str, budget: Budget | None = None
    ) -> list[IBRequest]:
        """Lease up to ``n`` requests in priority order; with a ``budget``, only those whose
        cost fits it (a request that does not fit is skipped, not blocking)."""
        accept = _admission(n, budget)
        claimed = self.core.claim(n, worker_id, accept)
        await self._commit()
        return claimed

    @ray.method(max_task_retries=0)  # as claim: a retry would lease requests nobody receives
    async def claim_wait(
        self,
        n: int,
        worker_id: str,
        budget: Budget | None = None,
        wait_seconds: float = 0.5,
    ) -> tuple[list[IBRequest], int]:
        """``claim``, but when nothing at all is claimable, wait up to ``wait_seconds`` for a
        request to arrive (submit, release, expired lease) and claim then.

        Returns (claimed, rejected): ``rejected`` counts the candidates the budget turned
        down. It waits only if there was no candidate, so a gateway whose pacing budget
        rejects the backlog gets its answer at once and decides itself when to ask again.
        """
        accept = _admission(n, budget)
        asked = 0

        def counted(request: IBRequest) -> bool:
            nonlocal asked
            asked += 1
            return accept is None or accept(request)

        arrival = self._next_arrival()  # taken before the claim: no wake-up can be missed
        claimed = self.core.claim(n, worker_id, counted)
        if not claimed and not asked and n and wait_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(arrival), wait_seconds)
            claimed = self.core.claim(n, worker_id, counted)
        await self._commit()
        return claimed, asked - len(claimed)

    async def renew(self, request_ids: Sequence[str], worker_id: str) -> int:
        renewed = self.core.renew(request_ids, worker_id)
        await self._commit()
        return renewed

    async def complete(self, request_id: str, worker_id: str, result_data: dict) -> bool:
        completed = self.core.complete(request_id, worker_id, result_data)
        await self._commit()
        return completed

    async def fail(
        self, request_id: str, worker_id: str, error_message: str, retryable: bool
    ) -> Status:
        status = self.core.fail(request_id, worker_id, error_message, retryable)
        await self._commit()
        if status is None:
            stored = await self.get(request_id)
            if stored is None:
                raise UnknownRequest(request_id)
            status = stored.status
        return status

    async def complete_many(
        self, outcomes: Sequence[tuple[str, dict]], worker_id: str
    ) -> list[bool]:
        """``complete`` for many (request_id, result_data) pairs: one call, one commit.

        All or nothing: every result_data is checked before any request changes.
        """
        results = self.core.complete_many(outcomes, worker_id)
        await self._commit()
        return results

    async def fail_many(
        self, failures: Sequence[tuple[str, str, bool]], worker_id: str
    ) -> list[Status | None]:
        """``fail`` for many (request_id, error_message, retryable) triples: one call, one
        commit. A request unknown to the queue gets None (``fail`` raises for it)."""
        statuses = [self.core.fail(rid, worker_id, message, retryable)
                    for rid, message, retryable in failures]
        await self._commit()
        out: list[Status | None] = []
        for (rid, _, _), status in zip(failures, statuses, strict=True):
            if status is None:  # final and evicted from memory, or unknown
                stored = await self.get(rid)
                status = stored.status if stored is not None else None
            out.append(status)
        return out

    async def expire_predecessor_leases(self, worker_prefix: str, worker_id: str) -> int:
        """A restarted singleton worker frees its dead predecessors' leases at once."""
        freed = self.core.expire_predecessor_leases(worker_prefix, worker_id)
        if freed:
            await self._commit()
        return freed

    async def release(self, request_ids: Sequence[str], worker_id: str) -> int:
        released = self.core.release(request_ids, worker_id)
        await self._commit()
        return released

    # ------------------------------------------------------------------ reads

    async def get(self, request_id: str) -> IBRequest | None:
        self._start_housekeeping()
        request = self.core.get(request_id)
        if request is None:  # final and evicted from memory, or unknown
            request = await self.committer.run_blocking(self.committer.journal.lookup, request_id)
        return request

    async def wait(self, request_id: str, timeout: float) -> IBRequest:
        """The request once final (and durable); ``RequestTimeout`` after ``timeout`` s."""
        request = await self.get(request_id)
        if request is None:
            raise UnknownRequest(request_id)
        if not request.is_final:
            event = self._waiters.setdefault(request_id, asyncio.Event())
            self._waiter_counts[request_id] += 1
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                raise RequestTimeout(request_id, timeout) from None
            finally:
                self._waiter_counts[request_id] -= 1
                if not self._waiter_counts[request_id]:
                    del self._waiter_counts[request_id]
                    self._waiters.pop(request_id, None)
            request = await self.get(request_id)
        await self.committer.barrier()
        assert request is not None
        return request

    async def wait_many(self, request_ids: Sequence[str], timeout: float) -> list[IBRequest | None]:
        """``wait`` for many requests in one call: each one's final state, or None for those
        still not final after ``timeout`` s (no exception for them). Unknown ids raise
        ``UnknownRequest``."""

        async def final_or_none(request_id: str) -> IBRequest | None:
            try:
                return await self.wait(request_id, timeout)
            except RequestTimeout:
                return None

        return list(await asyncio.gather(*(final_or_none(r) for r in request_ids)))

    async def stats(self) -> dict[str, Any]:
        self._start_housekeeping()
        self.core.tick()
        self._journal(self.core.drain_changes())
        return {**queue_stats(self.core, time.time()), "journal": self.committer.stats(),
                "tasks": self._loops.stats()}

    async def compact(self) -> dict[str, Any]:
        return await self.committer.compact()

    async def ping(self) -> str:
        return "pong"

    def close(self) -> None:
        """Stop journaling and release the journal's writer lock (a stopped queue)."""
        self.committer.journal.close()

    # ------------------------------------------------------------------ internals

    async def _commit(self) -> None:
        """Journal the changes of the calling method; return once they are durable."""
        self._start_housekeeping()
        await self._journal(self.core.drain_changes())

    def _journal(self, changes: list[IBRequest]) -> asyncio.Future[None]:
        durable = self.committer.append(changes)
        self._observer.journaled(changes, durable)
        if self._arrival is not None and any(r.status is Status.PENDING for r in changes):
            self._arrival.set_result(None)
            self._arrival = None
        finals = [r.request_id for r in changes if r.is_final and r.request_id in self._waiters]
        if finals:
            durable.add_done_callback(lambda f: f.exception() or self._wake_waiters(finals))
        return durable

    def _next_arrival(self) -> asyncio.Future[None]:
        if self._arrival is None:
            self._arrival = asyncio.get_running_loop().create_future()
        return self._arrival

    def _wake_waiters(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            event = self._waiters.get(request_id)
            if event is not None:
                event.set()

    def _start_housekeeping(self) -> None:
        self._loops.ensure_running(HOUSEKEEPING, self._housekeep)

    async def _housekeep(self) -> None:
        """Expire leases and wake due retries even when nobody claims (dead letters, waits)."""
        while True:
            await asyncio.sleep(self.config.housekeeping_seconds)
            try:
                self.core.tick()
                self._journal(self.core.drain_changes())
                self._observer.publish(self.core)
            except Exception:  # keep housekeeping alive; the next call will surface errors
                log.exception("queue housekeeping failed")


def get_or_create_queue(
    data_dir: str | os.PathLike[str],
    config: QueueConfig | None = None,
    *,
    name: str = QUEUE_ACTOR,
    namespace: str = NAMESPACE,
) -> ray.actor.ActorHandle:
    """The named, detached queue actor, created on this node if it does not exist yet.

    It is pinned to the node that creates it because ``data_dir`` is usually local disk: a
    queue restarted elsewhere would not find its journal. An existing actor is returned
    as is (its ``data_dir`` and ``config`` are the ones it was created with).
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor_class = ray.remote(RequestQueue)
    return actor_class.options(
        name=name,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        # Safe: submits coalesce with their own earlier attempt, completes and fails from
        # the lease holder are idempotent; claim opts out (see RequestQueue.claim).
        max_task_retries=-1,
        num_cpus=0,
        max_concurrency=MAX_CONCURRENCY,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(location.normalize(data_dir), config)


def _admission(n: int, budget: Budget | None) -> Callable[[IBRequest], bool] | None:
    """The claim predicate of a claim for ``n`` requests within ``budget`` (checked: these
    are a caller's arguments). The budget is plain numbers; the predicate is the queue's own
    code, weighing each request's stored cost."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidRequest("n", f"must be a whole number >= 0, got {n!r}")
    if budget is None:
        return None
    if not isinstance(budget, Budget):
        raise InvalidRequest("budget", f"must be a pacing Budget, got {type(budget).__name__}")
    return budget.admission()
