"""The one way a v6ray actor runs its long-lived loops on its event loop.

The gateway's claim loop, connection watchdog, metrics publisher and self-start, the queue's
housekeeping, the scheduler's tick loop and the monitor's sampler all run as named tasks of
a ``Supervisor``: started once (``ensure_running`` is idempotent), restarted when they die,
cancelled on stop, and visible in the actor's stats.

A task that dies with an exception is restarted after a capped, jittered backoff
(``v6ray.backoff``); each death is counted and its error kept, so ``stats()`` and
``v6ray status`` can say "claim loop restarted 3×, last error …" instead of a gateway that
silently stopped claiming. A task that returns normally (it was asked to stop) or is
cancelled stays down.

``RestartPolicy`` decides the delays and is pure (injected clock and random source);
``Supervisor`` only runs tasks on the event loop and applies it.

A detached actor that Ray restarts must resume its loops with nobody calling it, but its
``__init__`` runs before the actor's event loop does: ``call_after_construction`` queues a
call of one of its own methods, which runs on that loop once construction is over.
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
    """Named tasks on the running event loop, each restarted after it dies."""

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

    def start(
        self, name: str, run: Callable[[], Awaitable[None]], *,
        policy: RestartPolicy | None = None,
    ) -> asyncio.Task[None]:
        """Run ``run()`` as task ``name``; call it again whenever it raises.

        ``policy`` replaces the supervisor's own restart delays for this task."""
        if self.running(name):
            raise ValueError(f"task {name!r} is already supervised")
        record = self._records[name] = TaskRecord(name)
        task = asyncio.get_running_loop().create_task(
            self._keep(record, run, policy or self.policy), name=name
        )
        self._tasks[name] = task
        return task

    def ensure_running(
        self, name: str, run: Callable[[], Awaitable[None]], *,
        policy: RestartPolicy | None = None,
    ) -> asyncio.Task[None]:
        """``start``, unless task ``name`` runs already (cheap: callable on every request)."""
        if self.running(name):
            return self._tasks[name]
        return self.start(name, run, policy=policy)

    def running(self, name: str) -> bool:
        """Task ``name`` exists and has not ended (it may be waiting to restart)."""
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def cancel(self, name: str, timeout: float | None = None) -> None:
        """Stop task ``name`` only; wait up to ``timeout`` s for it to end.

        It counts as stopped at once (``running`` is False, ``start`` may run it anew):
        ``asyncio.wait_for`` inside the task may swallow a cancellation (bpo-42130), so a
        task that must not outlive this call also checks a flag of its own.
        """
        task = self._tasks.pop(name, None)
        if task is None or task.done():
            return
        self._records[name].state = STOPPED
        task.cancel()
        await asyncio.wait({task}, timeout=timeout)

    async def _keep(
        self, record: TaskRecord, run: Callable[[], Awaitable[None]], policy: RestartPolicy
    ) -> None:
        try:
            while await self._run_once(record, run, policy):
                pass
        except asyncio.CancelledError:
            record.state = STOPPED
            raise

    async def _run_once(
        self, record: TaskRecord, run: Callable[[], Awaitable[None]], policy: RestartPolicy
    ) -> bool:
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
            delay = policy.next_delay(record, self._clock())
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


def call_after_construction(method: str) -> bool:
    """From an actor's ``__init__``: call its own ``method`` once construction is over.

    The call is queued on the actor's own handle and runs on its event loop after
    ``__init__`` returns, also when Ray restarts the actor (nobody else calls it then).
    False outside an actor (a plain object in a unit test): its caller starts it.
    """
    import ray  # here: the supervisor itself needs no Ray

    try:
        handle = ray.get_runtime_context().current_actor
    except Exception as exc:  # not inside an actor (plain-class use)
        log.debug("not calling %s after construction: %s", method, exc)
        return False
    getattr(handle, method).remote()
    return True
