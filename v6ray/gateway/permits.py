"""Async permits over the pure Pacer, and the one door to the socket.

Every message the IB connection writes passes through ``PermitGate.write``: the requests
handlers send (behind a permit) and ib_async's own traffic (connect-time requests, the
cancels after a timeout, re-requests after 1102), which reaches it because ``Connection``
routes ib_async's ``Client.sendMsg`` here. Writes are spaced by ``Pacer.wire_delay``, so
the rate IB counts at receipt holds whatever the event loop's delays were.

Waiters of every kind (a plain message, a market-data line, a historical request) share
one list ordered by (priority, arrival), so an IMMEDIATE request's messages overtake a
BACKGROUND backlog within the same budget. One pump grants the first waiter whose own
resource is free, at the instant the socket may take a message, and runs its ``send``
right there: the pacer's timestamp IS the send time (a resumed coroutine may run tens of
ms later on a busy loop). ib_async's own writes that find the socket busy wait in a FIFO
backlog that goes first: they are cancels and connect traffic, which free resources.

Lines are head-of-line among lines (a big request is not starved by small ones);
historical requests are not, because the 15-second identical rule and the per-contract
rule block one waiter without blocking the others.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from v6ray.pacing.pacer import HistoricalCall, Pacer

MESSAGE, LINE, HISTORICAL = "message", "line", "historical"
_HEAD_OF_LINE = frozenset({LINE})


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    kind: str = field(compare=False)
    item: Any = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    send: Callable[[], Any] = field(compare=False)


class PermitGate:
    """Permits and paced writes for one IB connection. ``enabled=False`` grants and
    writes everything at once (only for a simulator with its limits off), still counting
    lines and messages for stats."""

    def __init__(self, pacer: Pacer, *, enabled: bool = True) -> None:
        self.pacer = pacer
        self.enabled = enabled
        self._waiters: list[_Waiter] = []
        self._backlog: collections.deque[Callable[[], None]] = collections.deque()
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.on_release: Callable[[], None] = lambda: None  # a line or request given back
        # How late the pump's timers ran (s): a busy or CPU-starved event loop shows here
        # first, as lost throughput (a late write earns no catch-up), never as a breach.
        self._lateness: collections.deque[float] = collections.deque(maxlen=512)
        # Seconds the socket could have taken a message but none left, split by why:
        # nothing was ready to send (the workload), or the pump's timer ran late (a busy
        # or CPU-starved event loop). Together: the budget left unused.
        self.unused_seconds = {"nothing_ready": 0.0, "timer_late": 0.0}
        self._in_timer = False

    # --- the socket -------------------------------------------------------------------
    def write(self, put: Callable[[], None]) -> None:
        """Write one message (``put()`` hands it to the transport) now if the socket may
        take it, else after the backlog ahead of it. Never blocks, never drops."""
        if not self.enabled or (not self._backlog and self.pacer.wire_delay() <= 0):
            self._put(put)
            return
        self._backlog.append(put)
        self._schedule(self.pacer.wire_delay())

    def drop_backlog(self) -> None:
        """The socket closed: writes still waiting belong to a session that is gone."""
        self._backlog.clear()

    def _put(self, put: Callable[[], None]) -> None:
        unused = self.pacer.wire_unused()
        if unused > 0:
            self.unused_seconds["timer_late" if self._in_timer else "nothing_ready"] += unused
        put()
        self.pacer.message_written()

    # --- permits ----------------------------------------------------------------------
    async def message(self, send: Callable[[], Any], *, priority: int = 2) -> Any:
        """Send one plain message (contract details, positions, …) when the budget allows;
        returns ``send()``'s result (typically ib_async's future for the answer)."""
        return await self._acquire(MESSAGE, None, send, priority)

    @asynccontextmanager
    async def historical(
        self, call: HistoricalCall, send: Callable[[], Any], *, priority: int = 2
    ) -> AsyncIterator[Any]:
        """Send ``call`` (``send()``, run at the permit's instant) and hold it open for the
        block; yields ``send()``'s result."""
        sent = await self._acquire(HISTORICAL, call, send, priority)
        try:
            yield sent
        finally:
            self.pacer.historical_finished(call)
            self.pump()
            self.on_release()

    @asynccontextmanager
    async def line(self, send: Callable[[], Any], *, priority: int = 2) -> AsyncIterator[Any]:
        """Open one market-data line (``send()``, run at the permit's instant) and hold it
        for the block; yields ``send()``'s result."""
        sent = await self._acquire(LINE, 1, send, priority)
        try:
            yield sent
        finally:
            self.pacer.return_lines(1)
            self.pump()
            self.on_release()

    async def _acquire(self, kind: str, item: Any, send: Callable[[], Any], priority: int) -> Any:
        if not self.enabled:
            return self._grant_now(kind, item, send)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._seq), kind, item, loop.create_future(), send)
        self._waiters.append(waiter)
        self._waiters.sort()
        self.pump()
        try:
            return await waiter.future
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.future.done() and not waiter.future.cancelled() \
                    and waiter.future.exception() is None:
                self._give_back(kind, item)  # sent, then cancelled before the caller resumed
                self.pump()
            raise

    def _grant_now(self, kind: str, item: Any, send: Callable[[], Any]) -> Any:
        self._take(kind, item)
        try:
            return send()
        except Exception:
            self._give_back(kind, item)
            raise

    # --- the pump ---------------------------------------------------------------------
    def pump(self) -> None:
        """Write or grant whatever the rules allow now; schedule the next look."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while True:
            wait = self.pacer.wire_delay() if self.enabled else 0.0
            if wait > 0:
                if self._backlog or self._waiters:
                    self._schedule(wait)
                return
            if self._backlog:
                self._put(self._backlog.popleft())
                continue
            waiter, soonest = self._next_ready()
            if waiter is None:
                if math.isfinite(soonest):
                    self._schedule(soonest)
                return
            self._waiters.remove(waiter)
            try:
                result = self._grant_now(waiter.kind, waiter.item, waiter.send)
            except Exception as exc:  # not sent after all: the permit went back
                waiter.future.set_exception(exc)
            else:
                waiter.future.set_result(result)

    def _next_ready(self) -> tuple[_Waiter | None, float]:
        """The first waiter (priority order) whose own resource is free, else the soonest
        time one may be."""
        soonest = math.inf
        blocked: set[str] = set()
        for waiter in list(self._waiters):
            if waiter.future.done():  # cancelled meanwhile
                self._waiters.remove(waiter)
                continue
            if waiter.kind in blocked:
                continue
            delay = self._delay(waiter.kind, waiter.item)
            if delay <= 0:
                return waiter, 0.0
            soonest = min(soonest, delay)
            if waiter.kind in _HEAD_OF_LINE:
                blocked.add(waiter.kind)
        return None, soonest

    def _delay(self, kind: str, item: Any) -> float:
        if kind == LINE:
            return self.pacer.line_delay(item)
        if kind == HISTORICAL:
            return self.pacer.historical_delay(item)
        return 0.0

    def _take(self, kind: str, item: Any) -> None:
        if kind == LINE:
            self.pacer.take_lines(item)
        elif kind == HISTORICAL:
            self.pacer.take_historical(item)

    def _give_back(self, kind: str, item: Any) -> None:
        if kind == LINE:
            self.pacer.return_lines(item)
        elif kind == HISTORICAL:
            self.pacer.historical_finished(item)

    def _schedule(self, delay: float) -> None:
        """Make sure the pump runs again within ``delay`` seconds."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timer, when)

    def _on_timer(self, when: float) -> None:
        self._lateness.append(max(0.0, asyncio.get_running_loop().time() - when))
        self._timer = None
        self._in_timer = True
        try:
            self.pump()
        finally:
            self._in_timer = False

    # --- views and teardown -----------------------------------------------------------
    def timer_lateness(self) -> dict[str, float]:
        """Milliseconds the pump's recent timers ran late: median, 99th percentile, max."""
        late = sorted(self._lateness)
        if not late:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {
            "p50_ms": round(late[len(late) // 2] * 1000, 2),
            "p99_ms": round(late[min(len(late) - 1, int(len(late) * 0.99))] * 1000, 2),
            "max_ms": round(late[-1] * 1000, 2),
        }

    def waiting(self) -> dict[str, int]:
        counts = collections.Counter(waiter.kind for waiter in self._waiters)
        return {
            "messages": counts[MESSAGE],
            "lines": counts[LINE],
            "historical": counts[HISTORICAL],
            "backlog": len(self._backlog),
        }

    def fail_all(self, exc: BaseException) -> None:
        """Wake every waiter with ``exc`` (connection lost, shutdown); unsent writes of a
        closed socket are dropped, as the transport would drop them."""
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        self._waiters.clear()
        self.drop_backlog()
