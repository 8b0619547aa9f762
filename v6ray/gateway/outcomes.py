"""Outcomes (complete / fail / release) sent to the queue in batches, not one call each.

A write batch commits the rows of many requests at once, and all of them then complete
in the same event-loop turn: one ``complete_many`` call carries them all (one Ray call,
one journal commit) instead of one ``complete`` each. Ray's per-call cost on both actors
was the largest CPU item per request (profiled: ~1 ms per call on the queue).

Each caller still awaits its own answer, which arrives only once the queue has journaled
the change (the queue acknowledges nothing before it is durable). At most one call per
kind is in flight; outcomes arriving meanwhile go out together in the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from v6ray.requests.model import Status

Send = Callable[[list[Any]], Awaitable[Sequence[Any]]]


class _Lane:
    """One kind of outcome: items buffered, sent by ``send`` as one list, answers fanned out."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._buffer: list[tuple[Any, asyncio.Future[Any]]] = []
        self._sending: asyncio.Task[None] | None = None
        self._scheduled = False
        self.calls = 0

    def submit(self, item: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._buffer.append((item, future))
        if not self._scheduled and self._sending is None:
            # Next turn of the loop: everything resolved in this turn joins the same call.
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if self._sending is not None or not self._buffer:
            return  # picked up when the running call ends
        batch, self._buffer = self._buffer, []
        self._sending = asyncio.get_running_loop().create_task(self._deliver(batch))

    async def _deliver(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            self.calls += 1
            answers = list(await self._send([item for item, _ in batch]))
            if len(answers) != len(batch):  # a caller left waiting would hang for good
                raise RuntimeError(
                    f"the queue gave {len(answers)} answer(s) for {len(batch)} outcomes"
                )
        except Exception as exc:  # the queue restarting, say: every caller sees the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        finally:
            self._sending = None
            if self._buffer:
                self._flush()


class OutcomeReporter:
    """The gateway's completes, fails and releases for ``worker_id``, batched per kind."""

    def __init__(self, queue: Any, worker_id: str) -> None:
        self._complete = _Lane(lambda items: queue.complete_many.remote(items, worker_id))
        self._fail = _Lane(lambda items: queue.fail_many.remote(items, worker_id))
        self._release = _Lane(self._release_all(queue, worker_id))

    @staticmethod
    def _release_all(queue: Any, worker_id: str) -> Send:
        async def send(ids: list[str]) -> list[None]:
            await queue.release.remote(ids, worker_id)
            return [None] * len(ids)

        return send

    def complete(self, request_id: str, result_data: dict[str, Any]) -> Awaitable[bool]:
        """True once the queue durably recorded SUCCESS (False: the lease was lost)."""
        return self._complete.submit((request_id, result_data))

    def fail(self, request_id: str, message: str, retryable: bool) -> Awaitable[Status | None]:
        return self._fail.submit((request_id, message, retryable))

    def release(self, request_id: str) -> Awaitable[None]:
        return self._release.submit(request_id)

    @property
    def calls(self) -> int:
        """Queue calls made so far (for stats: compare with the number of outcomes)."""
        return self._complete.calls + self._fail.calls + self._release.calls
