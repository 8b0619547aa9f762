"""OutcomeReporter: completes/fails/releases of one loop turn go to the queue in one call."""

from __future__ import annotations

import asyncio

import pytest

from v6ray.gateway.outcomes import OutcomeReporter
from v6ray.requests.model import Status


class FakeMethod:
    """``queue.<method>.remote(items, worker_id)``: records calls, answers when released."""

    def __init__(self, answer, gate: asyncio.Event | None = None, error: Exception | None = None):
        self.calls: list[tuple[list, str]] = []
        self._answer, self._gate, self._error = answer, gate, error

    def remote(self, items, worker_id):
        self.calls.append((list(items), worker_id))

        async def reply():
            if self._gate is not None:
                await self._gate.wait()
            if self._error is not None:
                raise self._error
            return self._answer(items)

        return reply()


class FakeQueue:
    def __init__(self, gate=None, error=None):
        self.complete_many = FakeMethod(lambda items: [True] * len(items), gate, error)
        self.fail_many = FakeMethod(lambda items: [Status.PENDING] * len(items), gate, error)
        self.release = FakeMethod(lambda ids: len(ids), gate, error)


def run(coro):
    return asyncio.run(coro)


def test_outcomes_of_one_turn_share_one_call_each_caller_gets_its_answer():
    async def scenario():
        queue = FakeQueue()
        out = OutcomeReporter(queue, "gw-1")
        answers = await asyncio.gather(
            out.complete("a", {"rows": 1}), out.complete("b", {"rows": 2}),
            out.fail("c", "boom", True), out.release("d"), out.release("e"))
        assert answers == [True, True, Status.PENDING, None, None]
        assert queue.complete_many.calls == [([("a", {"rows": 1}), ("b", {"rows": 2})], "gw-1")]
        assert queue.fail_many.calls == [([("c", "boom", True)], "gw-1")]
        assert queue.release.calls == [(["d", "e"], "gw-1")]
        assert out.calls == 3

    run(scenario())


def test_outcomes_arriving_during_a_call_go_together_in_the_next():
    async def scenario():
        gate = asyncio.Event()
        queue = FakeQueue(gate=gate)
        out = OutcomeReporter(queue, "gw")
        first = asyncio.ensure_future(out.complete("a", {}))
        await asyncio.sleep(0.01)  # "a" is in flight, waiting for the queue
        later = [asyncio.ensure_future(out.complete(r, {})) for r in ("b", "c")]
        await asyncio.sleep(0.01)
        assert len(queue.complete_many.calls) == 1  # at most one call in flight
        gate.set()
        assert await asyncio.gather(first, *later) == [True, True, True]
        assert [ids for ids, _ in queue.complete_many.calls] == [
            [("a", {})], [("b", {}), ("c", {})]]

    run(scenario())


def test_a_failed_call_raises_in_every_caller_of_that_batch():
    async def scenario():
        out = OutcomeReporter(FakeQueue(error=RuntimeError("queue restarting")), "gw")
        results = await asyncio.gather(out.complete("a", {}), out.complete("b", {}),
                                       return_exceptions=True)
        assert [type(r) for r in results] == [RuntimeError, RuntimeError]
        with pytest.raises(RuntimeError):
            await out.fail("c", "x", False)

    run(scenario())


def test_an_answer_that_does_not_match_the_batch_fails_every_caller_instead_of_hanging():
    """A caller left waiting would keep its request in flight (and its lease renewed) forever."""
    async def scenario():
        queue = FakeQueue()
        queue.complete_many = FakeMethod(lambda items: [True])  # one answer for any batch
        out = OutcomeReporter(queue, "gw")
        results = await asyncio.wait_for(
            asyncio.gather(out.complete("a", {}), out.complete("b", {}),
                           return_exceptions=True), 2.0)
        assert [type(r) for r in results] == [RuntimeError, RuntimeError]
        assert "1 answer(s) for 2" in str(results[0])
        assert await out.complete("c", {}) is True  # the lane still works

    run(scenario())
