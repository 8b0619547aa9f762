"""Async permits over the pure Pacer: "may I send this IB message now?".

Waiters queue by (priority, arrival). A pump grants every waiter whose rule allows it,
in that order, and sleeps until the earliest delay ends or a resource is given back, so
an IMMEDIATE request's messages overtake a BACKGROUND backlog within the same budget.

Messages and lines are head-of-line (a waiter never overtakes a higher-priority one, so a
big request is not starved); historical requests are not, because the 15-second
identical rule and the per-contract rule block one waiter without blocking the others.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from v6ray.gateway.pacing import HistoricalCall, Pacer


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    item: Any = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    # Run by the pump at the very instant the permit is recorded, so the pacer's timestamp
    # IS the send time (a resumed coroutine may run tens of ms later on a busy loop).
    action: Callable[[], Any] | None = field(default=None, compare=False)


class _Lane:
    """One kind of permit: a waiter list and the pump that grants it."""

    def __init__(
        self,
        delay: Callable[[Any], float],
        take: Callable[[Any], None],
        *,
        head_of_line: bool,
        give_back: Callable[[Any], None] | None = None,
    ) -> None:
        self._delay = delay
        self._take = take
        self._give_back = give_back
        self._head_of_line = head_of_line
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(
        self, item: Any, priority: int, action: Callable[[], Any] | None = None
    ) -> Any:
        """Wait for the permit; returns ``action()``'s result, run at the granting instant."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._seq), item, loop.create_future(), action)
        self._waiters.append(waiter)
        self._waiters.sort()
        self.pump()
        try:
            return await waiter.future
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif self._give_back and waiter.future.done() and not waiter.future.cancelled() \
                    and waiter.future.exception() is None:
                self._give_back(item)  # granted, then cancelled before the caller resumed
                self.pump()
            raise

    def pump(self) -> None:
        """Grant whatever the rules allow now; schedule the next look."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        soonest = math.inf
        for waiter in list(self._waiters):
            if waiter.future.done():  # cancelled meanwhile
                self._waiters.remove(waiter)
                continue
            delay = self._delay(waiter.item)
            if delay <= 0:
                self._take(waiter.item)
                self._waiters.remove(waiter)
                try:
                    result = waiter.action() if waiter.action is not None else None
                except Exception as exc:  # not sent after all: the permit goes back
                    if self._give_back is not None:
                        self._give_back(waiter.item)
                    waiter.future.set_exception(exc)
                else:
                    waiter.future.set_result(result)
                continue
            soonest = min(soonest, delay)
            if self._head_of_line:
                break
        if self._waiters and math.isfinite(soonest):
            self._timer = asyncio.get_running_loop().call_later(soonest, self.pump)

    def fail_all(self, exc: BaseException) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        self._waiters.clear()


class PermitGate:
    """Permits for one IB connection. ``enabled=False`` grants everything at once (only
    for a simulator with its limits off), still counting lines and messages for stats."""

    def __init__(self, pacer: Pacer, *, enabled: bool = True) -> None:
        self.pacer = pacer
        self.enabled = enabled
        self._messages = _Lane(
            lambda n: pacer.message_delay(n), lambda n: pacer.take_messages(n), head_of_line=True
        )
        self._lines = _Lane(
            lambda n: pacer.line_delay(n),
            lambda n: pacer.take_lines(n),
            head_of_line=True,
            give_back=lambda n: pacer.return_lines(n),
        )
        self._historical = _Lane(
            pacer.historical_delay,
            pacer.take_historical,
            head_of_line=False,
            give_back=pacer.historical_finished,
        )

    async def messages(self, n: int = 1, *, priority: int = 2) -> None:
        """Wait until ``n`` plain messages (contract details, cancels, …) may be sent."""
        if not self.enabled:
            self.pacer.take_messages(n)
            return
        await self._messages.acquire(n, priority)

    @asynccontextmanager
    async def historical(
        self, call: HistoricalCall, send: Callable[[], Any], *, priority: int = 2
    ) -> AsyncIterator[Any]:
        """Send ``call`` (``send()``, run at the permit's instant) and hold it open for the
        block; yields ``send()``'s result."""
        if self.enabled:
            sent = await self._historical.acquire(call, priority, send)
        else:
            self.pacer.take_historical(call)
            try:
                sent = send()
            except Exception:
                self.pacer.historical_finished(call)
                raise
        try:
            yield sent
        finally:
            self.pacer.historical_finished(call)
            self._historical.pump()

    @asynccontextmanager
    async def line(self, send: Callable[[], Any], *, priority: int = 2) -> AsyncIterator[Any]:
        """Open one market-data line (``send()``, run at the permit's instant) and hold it
        for the block; yields ``send()``'s result."""
        if self.enabled:
            sent = await self._lines.acquire(1, priority, send)
        else:
            self.pacer.take_lines(1)
            try:
                sent = send()
            except Exception:
                self.pacer.return_lines(1)
                raise
        try:
            yield sent
        finally:
            self.pacer.return_lines(1)
            self._lines.pump()

    def waiting(self) -> dict[str, int]:
        return {
            "messages": self._messages.waiting,
            "lines": self._lines.waiting,
            "historical": self._historical.waiting,
        }

    def fail_all(self, exc: BaseException) -> None:
        """Wake every waiter with ``exc`` (connection lost, shutdown)."""
        for lane in (self._messages, self._lines, self._historical):
            lane.fail_all(exc)
