"""Keeps the gateway's long-lived tasks (claim loop, connection watchdog) running.

A task that dies with an exception is restarted after a capped, jittered backoff
(``v6ray.backoff``); each death is counted and its error kept, so ``stats()`` and
``v6ray status`` can say "claim loop restarted 3×, last error …" instead of a gateway that
silently stopped claiming. A task that returns normally (it was asked to stop) or is
cancelled stays down.

``RestartPolicy`` decides the delays and is pure (injected clock and random source);
``Supervisor`` only runs tasks on the event loop and applies it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from v6ray.backoff import backoff_delay

log = logging.getLogger(__name__)

RUNNING, RESTARTING, EXITED, STOPPED = "running", "restarting", "exited", "stopped"
ERROR_TEXT_LIMIT = 300  # a traceback belongs in the log, not in every stats answer


@dataclass
class TaskRecord:
    """What is known about one supervised task (the answer of ``Supervisor.stats``)."""

    name: str
    state: str = RUNNING
    restarts: int = 0  # deaths followed by a restart
    last_error: str | None = None
    last_error_at: float | None = None  # wall-clock seconds, for people reading status
    started_at: float = 0.0  # clock() of the current run
    streak: int = 0  # deaths in a row, each soon after its own start

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts,
                "last_error": self.last_error, "last_error_at": self.last_error_at}


@dataclass
class RestartPolicy:
    """Delay before restarting a task that died at ``now``.

    Deaths in quick succession back off exponentially up to ``cap``; a run that lasted
    ``healthy_after`` seconds counts as recovered, so one death after hours of work is
    retried after ``base`` seconds again, not after the delay of an old streak.
    """

    base: float = 0.5
    cap: float = 30.0
    healthy_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self, record: TaskRecord, now: float) -> float:
        healthy = now - record.started_at >= self.healthy_after
        record.streak = 1 if healthy else record.streak + 1
        return backoff_delay(record.streak, base=self.base, cap=self.cap, rng=self.rng)


class Supervisor:
    def __init__(
        self,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._records: dict[str, TaskRecord] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run ``run()`` as task ``name``; call it again whenever it raises."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"task {name!r} is already supervised")
        record = self._records[name] = TaskRecord(name)
        task = asyncio.get_running_loop().create_task(self._keep(record, run), name=name)
        self._tasks[name] = task
        return task

    async def _keep(self, record: TaskRecord, run: Callable[[], Awaitable[None]]) -> None:
        try:
            while await self._run_once(record, run):
                pass
        except asyncio.CancelledError:
            record.state = STOPPED
            raise

    async def _run_once(self, record: TaskRecord, run: Callable[[], Awaitable[None]]) -> bool:
        """One run of the task; True when it died and is to be run again."""
        record.state, record.started_at = RUNNING, self._clock()
        try:
            await run()
        except Exception as exc:
            record.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]
            record.last_error_at = self._wall_clock()
            if self._stopping:
                record.state = STOPPED
                return False
            delay = self.policy.next_delay(record, self._clock())
            record.restarts += 1
            record.state = RESTARTING
            log.error("%s died; restart %d in %.2f s", record.name, record.restarts, delay,
                      exc_info=exc)
            await self._sleep(delay)
            if self._stopping:
                record.state = STOPPED
                return False
            return True
        record.state = EXITED
        return False

    async def stop(self) -> None:
        """No more restarts; cancel what still runs and wait for it."""
        self._stopping = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: record.as_dict() for name, record in self._records.items()}
