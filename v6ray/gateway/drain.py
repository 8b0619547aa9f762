"""The drain loop: claim → run handlers concurrently → write → complete/fail/release.

* Claims carry the pacer's ``Budget`` (plain numbers) for the queue to weigh each request's
  stored cost against, so a request that must wait for a budget stays PENDING (others
  behind it are still claimed) and IMMEDIATE requests are admitted first; permits are then
  handed out by priority (permits.py).
* Results are batched per table (``WriteBatcher``) and merged by writer tasks; a request
  is completed only after its rows are committed.
* A pause (1100, dropped connection, shutdown) cancels requests still talking to IB and
  *releases* them: they were not wrong, IB was away. Requests already writing finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from v6ray.errors import GatewayUnavailable, IBRequestError
from v6ray.gateway import ib_errors
from v6ray.gateway.breaker import CircuitBreaker, CircuitState
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.connection import Connection
from v6ray.gateway.handlers import HandlerContext, get_handler
from v6ray.gateway.outcomes import OutcomeReporter
from v6ray.gateway.permits import PermitGate
from v6ray.gateway.write_batch import WriteBatcher
from v6ray.pacing.costs import Cost
from v6ray.pacing.pacer import Pacer
from v6ray.requests.model import IBRequest
from v6ray.service.placement import WriterRotation
from v6ray.storage.schemas import table_spec

log = logging.getLogger(__name__)


@dataclass
class _InFlight:
    request: IBRequest
    task: asyncio.Task | None = None
    reserved: Cost = field(default_factory=Cost)
    writing: bool = False
    started: float = field(default_factory=time.monotonic)


class Drainer:
    def __init__(
        self,
        config: GatewayConfig,
        data_dir: str,
        queue: Any,
        connection: Connection,
        pacer: Pacer,
        gate: PermitGate,
        breaker: CircuitBreaker,
        worker_id: str,
    ) -> None:
        self.config = config
        self.queue = queue
        self.connection = connection
        self.pacer = pacer
        self.gate = gate
        self.breaker = breaker
        self.worker_id = worker_id
        # On a cluster each commit goes to the next node with CPU (placement.WriterRotation).
        rotation = WriterRotation(ray.nodes) if ray.is_initialized() else None
        self.writer = WriteBatcher(data_dir, config, rotation=rotation)
        self.outcomes = OutcomeReporter(queue, worker_id)
        self.in_flight: dict[str, _InFlight] = {}
        self.reserved = Cost()
        self.counters: Counter[str] = Counter()
        self.last_error: str | None = None
        self._claiming = True
        self._changed = asyncio.Event()
        self._loop_exited = asyncio.Event()
        # A line or an open historical request given back can make room for a request the
        # last claim turned down: look again then, not only when a whole request ends.
        gate.on_release = self._changed.set

    # --- the loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """The claim loop; the gateway's supervisor runs it again if it dies."""
        self._loop_exited.clear()  # a restarted loop may again hold a claim in flight
        try:
            await self._claim_loop()
        finally:
            self._loop_exited.set()

    async def _claim_loop(self) -> None:
        idle = self.config.idle_min
        renew_at = time.monotonic() + self.config.lease_renew_seconds
        while self._claiming:
            if time.monotonic() >= renew_at:
                await self._renew()
                renew_at = time.monotonic() + self.config.lease_renew_seconds
            if not await self.connection.wait_ready(timeout=0.5):
                continue
            if self.breaker.state is CircuitState.OPEN:
                await self._wait_change(min(1.0, max(0.05, self.breaker.retry_after())))
                continue
            room = min(self.config.claim_batch, self.config.max_in_flight - len(self.in_flight))
            if room <= 0:
                await self._wait_change(idle)
                continue
            # Pacing off (a simulator with its limits off): admit anything, like IB would.
            budget = self.pacer.budget(
                self.reserved, len(self.in_flight), horizon=2 * self.config.idle_max
            ) if self.config.pacing else None
            self._changed.clear()  # what changes from here on may fit the next claim
            try:
                # An empty queue holds the call until work arrives (≤ idle_max): no polling
                # delay between a submit and its claim.
                claimed, rejected = await self.queue.claim_wait.remote(
                    room, self.worker_id, budget, self.config.idle_max
                )
            except Exception as exc:  # the queue restarting: try again shortly
                self.last_error = f"claim failed: {exc!r}"[:300]
                await self._wait_change(self.config.idle_max)
                continue
            if not claimed:
                if rejected:  # pacing turned the backlog down: look again when budgets move
                    await asyncio.sleep(self.config.idle_min)  # at most ~50 claims a second
                    await self._wait_change(idle, since_claim=True)
                    idle = min(idle * 2, self.config.idle_max)
                continue
            idle = self.config.idle_min
            if not self.connection.ready or not self._claiming:
                # IB went away (1100, drop) or a stop began while the claim was in flight.
                await self._give_back(claimed)
                continue
            for request in claimed:
                self._start(request)

    async def _give_back(self, claimed: list[IBRequest]) -> None:
        """Release requests claimed but not started. If the queue cannot take them now
        (restarting), their leases expire and they are claimed again: nothing is lost, so
        the loop goes on rather than die on it."""
        try:
            await self.queue.release.remote([r.request_id for r in claimed], self.worker_id)
        except Exception as exc:
            self.last_error = f"release failed: {exc!r}"[:300]
            log.warning("could not release %d claimed request(s): %s", len(claimed), exc)
            return
        self.counters["released"] += len(claimed)

    async def _wait_change(self, seconds: float, *, since_claim: bool = False) -> None:
        """Wait up to ``seconds`` for a change; ``since_claim``: a change since the last
        claim was sent counts too (it is not cleared first)."""
        if not since_claim:
            self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def _renew(self) -> None:
        ids = list(self.in_flight)
        if ids:
            with contextlib.suppress(Exception):
                await self.queue.renew.remote(ids, self.worker_id)

    # --- one request ----------------------------------------------------------------------
    def _start(self, request: IBRequest) -> None:
        entry = _InFlight(request, reserved=request.cost)
        self.reserved = self.reserved + request.cost
        self.in_flight[request.request_id] = entry
        entry.task = asyncio.get_running_loop().create_task(self._execute(entry))

    def _on_sent(self, entry: _InFlight) -> Callable[[Cost], None]:
        def sent(cost: Cost) -> None:
            used = Cost(
                min(cost.small_bar, entry.reserved.small_bar),
                min(cost.large_bar, entry.reserved.large_bar),
                min(cost.historical, entry.reserved.historical),
                min(cost.lines, entry.reserved.lines),
            )
            entry.reserved = entry.reserved - used
            self.reserved = self.reserved - used

        return sent

    async def _execute(self, entry: _InFlight) -> None:
        request = entry.request
        rid = request.request_id
        try:
            if not self.connection.ready:
                raise GatewayUnavailable("paused before the request started")
            handler = get_handler(request.request_type.value)
            ctx = HandlerContext(
                ib=self.connection.ib, gate=self.gate, config=self.config, request=request,
                on_sent=self._on_sent(entry),
            )
            rows = await handler.run(ctx)
            self.breaker.record_success()
            entry.writing = True
            result = await self.writer.write(
                handler.table, rows, replacing=_earlier_rows_to_replace(request, handler.table)
            )
            await self.outcomes.complete(rid, result)
            self.counters["completed"] += 1
        except (asyncio.CancelledError, GatewayUnavailable) as exc:
            # Not the request's fault: IB went away or we are stopping. Our own task, so
            # the cancellation ends here once the lease is given back.
            if entry.writing:
                # Its commit may still land: keep the attempt counted (a release gives it
                # back), so the next attempt replaces those rows (_earlier_rows_to_replace).
                message = f"stopped while its rows were committed: {exc!r}"
                await asyncio.shield(self._fail(rid, message, True))
            else:
                await self._release(rid, exc)
        except ib_errors.NoData as answer:  # IB had no data for it: SUCCESS, 0 rows, a note
            self.breaker.record_success()
            await self.outcomes.complete(rid, answer.result_data)
            self.counters["completed"] += 1
        except IBRequestError as exc:
            if exc.code == ib_errors.CODE_TIMEOUT:
                self.breaker.record_failure()
            await self._fail(rid, str(exc), exc.retryable)
        except Exception as exc:  # a bug or a storage failure: retry, keep the text
            log.exception("request %s failed", rid)
            await self._fail(rid, f"{type(exc).__name__}: {exc}"[:1000], True)
        finally:
            self.in_flight.pop(rid, None)
            self.reserved = self.reserved - entry.reserved
            self._changed.set()

    async def _release(self, rid: str, why: BaseException) -> None:
        self.counters["released"] += 1
        with contextlib.suppress(Exception):
            await asyncio.shield(self.outcomes.release(rid))

    async def _fail(self, rid: str, message: str, retryable: bool) -> None:
        self.counters["failed" if not retryable else "retried"] += 1
        self.last_error = message
        with contextlib.suppress(Exception):
            await self.outcomes.fail(rid, message, retryable)

    # --- pause and stop -------------------------------------------------------------------
    def pause(self, reason: str) -> None:
        """IB is away: cancel requests still talking to IB (they are released)."""
        cancelled = 0
        for entry in list(self.in_flight.values()):
            if not entry.writing and entry.task is not None and not entry.task.done():
                entry.task.cancel()
                cancelled += 1
        if cancelled:
            log.warning("%s: released %d in-flight requests", reason, cancelled)
        self._changed.set()

    async def stop(self, timeout: float) -> dict[str, int]:
        """Stop claiming, let in-flight requests finish for ``timeout`` s, release the rest,
        then wait for the writers."""
        self._claiming = False
        self._changed.set()
        deadline = time.monotonic() + timeout
        tasks = [e.task for e in self.in_flight.values() if e.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()) * 0.8)
        leftover = [e.task for e in self.in_flight.values() if e.task and not e.task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover, timeout=max(1.0, deadline - time.monotonic()))
        await self.writer.flush_all(timeout=max(1.0, deadline - time.monotonic()))
        # The claim loop may be parked in claim_wait: let it return (and release what it
        # got) rather than be cancelled with requests leased to nobody.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._loop_exited.wait(), self.config.idle_max + 5.0)
        return {"cancelled": len(leftover), "in_flight": len(self.in_flight)}


def _earlier_rows_to_replace(request: IBRequest, table: str) -> str | None:
    """The request's id when an earlier attempt of it may have committed rows that this
    attempt's snapshot replaces (``WriteBatcher.write``). Every claim counts an attempt and
    a release gives it back, so ``attempts > 1`` means an earlier claim ended otherwise: a
    failure, a lost lease (a killed gateway), or a stop while its rows were committed."""
    if request.attempts > 1 and table_spec(table).rows_belong_to_request:
        return request.request_id
    return None


def resolve_queue(queue_name: str, namespace: str) -> Any:
    """The queue actor handle (it may still be starting: bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return ray.get_actor(queue_name, namespace=namespace)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
