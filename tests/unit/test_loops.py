"""Supervisor: a dead actor loop is restarted with capped backoff, counted, and reported."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.helpers import FakeClock
from v6ray.actors.loops import (
    EXITED,
    RESTARTING,
    RUNNING,
    STOPPED,
    RestartPolicy,
    Supervisor,
    TaskRecord,
)


class FixedRandom:
    """No jitter: every delay is the full backoff."""

    def random(self) -> float:
        return 0.0


class FakeSleep:
    """Records each backoff; advances the fake clock by it; a gate can hold it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.now += seconds
        if self.gate is not None:
            await self.gate.wait()


def make(base=1.0, cap=8.0, healthy_after=60.0):
    clock = FakeClock()
    sleep = FakeSleep(clock)
    policy = RestartPolicy(base=base, cap=cap, healthy_after=healthy_after, rng=FixedRandom())
    supervisor = Supervisor(policy, clock=clock, wall_clock=lambda: 1000.0 + clock.now,
                            sleep=sleep)
    return supervisor, clock, sleep


def test_a_task_that_dies_is_restarted_counted_and_its_error_kept():
    async def scenario():
        supervisor, _, sleep = make()
        runs: list[int] = []
        done = asyncio.Event()

        async def loop() -> None:
            runs.append(len(runs))
            if len(runs) <= 3:
                raise RuntimeError(f"release failed #{len(runs)}")
            await done.wait()

        supervisor.start("claim_loop", loop)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(runs) == 4  # three deaths, three restarts, now running
        stats = supervisor.stats()["claim_loop"]
        assert stats["state"] == RUNNING
        assert stats["restarts"] == 3
        assert stats["last_error"] == "RuntimeError: release failed #3"
        assert stats["last_error_at"] == pytest.approx(1000.0 + 1 + 2)  # the third death
        assert sleep.delays == [1.0, 2.0, 4.0]  # exponential, base 1
        done.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert supervisor.stats()["claim_loop"]["state"] == EXITED

    asyncio.run(scenario())


def test_backoff_is_capped_and_a_healthy_run_starts_the_streak_again():
    policy = RestartPolicy(base=1.0, cap=8.0, healthy_after=60.0, rng=FixedRandom())
    record = TaskRecord("watchdog")
    delays = [policy.next_delay(record, now=0.0) for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    record.started_at = 100.0
    assert policy.next_delay(record, now=100.0 + 59.0) == 8.0  # died soon again
    assert policy.next_delay(record, now=100.0 + 60.0) == 1.0  # ran a minute: fresh start


def test_jitter_takes_off_up_to_half_the_delay():
    class Draw:
        def random(self) -> float:
            return 1.0

    policy = RestartPolicy(base=2.0, cap=30.0, rng=Draw())
    assert policy.next_delay(TaskRecord("t"), now=0.0) == pytest.approx(1.0)


def test_a_task_that_returns_is_not_restarted():
    async def scenario():
        supervisor, _, sleep = make()
        runs: list[int] = []

        async def once() -> None:
            runs.append(1)

        await supervisor.start("claim_loop", once)
        assert runs == [1]
        assert sleep.delays == []
        assert supervisor.stats()["claim_loop"] == {
            "state": EXITED, "restarts": 0, "last_error": None, "last_error_at": None}

    asyncio.run(scenario())


def test_stop_during_the_backoff_does_not_restart():
    async def scenario():
        supervisor, _, sleep = make()
        sleep.gate = asyncio.Event()
        runs: list[int] = []

        async def dies() -> None:
            runs.append(1)
            raise ValueError("boom")

        task = supervisor.start("watchdog", dies)
        for _ in range(5):
            await asyncio.sleep(0)
        assert supervisor.stats()["watchdog"]["state"] == RESTARTING
        await supervisor.stop()
        assert task.done()
        assert runs == [1]
        assert supervisor.stats()["watchdog"]["state"] == STOPPED

    asyncio.run(scenario())


def test_stop_cancels_a_running_task_and_a_death_after_stop_is_final():
    async def scenario():
        supervisor, _, sleep = make()
        forever = asyncio.Event()

        async def waits() -> None:
            await forever.wait()

        supervisor.start("watchdog", waits)
        await asyncio.sleep(0)
        await supervisor.stop()
        assert supervisor.stats()["watchdog"]["state"] == STOPPED
        assert sleep.delays == []

    asyncio.run(scenario())


def test_one_task_per_name():
    async def scenario():
        supervisor, _, _ = make()
        forever = asyncio.Event()
        supervisor.start("claim_loop", forever.wait)
        with pytest.raises(ValueError, match="claim_loop"):
            supervisor.start("claim_loop", forever.wait)
        await supervisor.stop()

    asyncio.run(scenario())


class Fatal(BaseException):
    """Stands for SystemExit and friends (which asyncio itself re-raises out of the loop)."""


def test_base_exceptions_other_than_cancellation_are_not_swallowed():
    async def scenario():
        supervisor, _, sleep = make()

        async def exits() -> None:
            raise Fatal

        task = supervisor.start("claim_loop", exits)
        with pytest.raises(Fatal):
            await task
        assert sleep.delays == []

    asyncio.run(scenario())


def test_ensure_running_starts_a_loop_once_and_again_after_it_ended():
    async def scenario():
        supervisor, _, _ = make()
        runs: list[int] = []
        forever = asyncio.Event()

        async def loop() -> None:
            runs.append(1)
            await forever.wait()

        first = supervisor.ensure_running("housekeeping", loop)
        assert supervisor.ensure_running("housekeeping", loop) is first  # no second copy
        await asyncio.sleep(0)
        assert runs == [1] and supervisor.running("housekeeping")
        forever.set()
        await first
        assert not supervisor.running("housekeeping")
        assert supervisor.stats()["housekeeping"]["state"] == EXITED
        second = supervisor.ensure_running("housekeeping", loop)
        assert second is not first
        await second
        assert runs == [1, 1]

    asyncio.run(scenario())


def test_cancel_stops_one_loop_which_may_start_again():
    async def scenario():
        supervisor, _, _ = make()
        forever = asyncio.Event()
        other = supervisor.start("metrics", forever.wait)
        supervisor.start("tick_loop", forever.wait)
        await asyncio.sleep(0)
        await supervisor.cancel("tick_loop", timeout=1.0)
        assert not supervisor.running("tick_loop")
        assert supervisor.stats()["tick_loop"]["state"] == STOPPED
        assert supervisor.running("metrics") and not other.done()
        supervisor.start("tick_loop", forever.wait)  # stop, then start again
        assert supervisor.stats()["tick_loop"]["state"] == RUNNING
        await supervisor.cancel("never_started")  # nothing to do
        await supervisor.stop()

    asyncio.run(scenario())


def test_cancel_does_not_hang_on_a_loop_that_swallows_its_cancellation():
    async def scenario():
        supervisor, _, _ = make()
        released = asyncio.Event()

        async def stubborn() -> None:
            while not released.is_set():
                with contextlib.suppress(asyncio.CancelledError):  # as wait_for may (bpo-42130)
                    await asyncio.sleep(10)

        task = supervisor.start("tick_loop", stubborn)
        await asyncio.sleep(0)
        await supervisor.cancel("tick_loop", timeout=0.05)
        assert not task.done() and not supervisor.running("tick_loop")
        released.set()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)

    asyncio.run(scenario())


def test_call_after_construction_outside_an_actor_leaves_starting_to_the_caller():
    from v6ray.actors.loops import call_after_construction

    assert call_after_construction("start") is False
