"""The ``UnifiedScheduler`` Ray actor: a producer that enqueues periodic jobs; it never
touches IB.

A thin async shell: every tick it asks the pure ``Planner`` what is due, skips a job whose
previous requests are still queued (backpressure; the queue would coalesce them anyway),
submits the rest through the ``RequestQueue`` actor and saves its state atomically under the
data dir, so a restarted actor carries on where it stopped (``start`` is remembered).

A ``derive_statistics`` job enqueues the daily bars its symbols lack, then, in the
background, waits for them and runs the ``derive_and_write`` Ray task. A
``maintain_tables`` job runs the result tables' compaction, vacuum and checkpoint as a Ray
task in the background (``storage.maintenance.maintenance_task``): the rewrite's CPU and
disk work stays out of the gateway and of this actor.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ray

from v6ray import constants
from v6ray.actors.loops import Supervisor, call_after_construction
from v6ray.constants import NAMESPACE, QUEUE_ACTOR, SCHEDULER_ACTOR
from v6ray.observability.hooks import scheduler_job
from v6ray.requests.model import IBRequest
from v6ray.scheduler.jobs import DERIVE_STATISTICS, MAINTAIN_TABLES, Job, load_config
from v6ray.scheduler.planner import Planner, previous_run_pending
from v6ray.scheduler.state import JobState, SchedulerState, load_state, save_state, state_path
from v6ray.storage import location

log = logging.getLogger(__name__)

# A derive run waits this long for its missing daily bars before computing with what it has.
DERIVE_BARS_TIMEOUT_SECONDS = 1800.0
# Status look-ups of a previous run: an unresponsive queue must not stall the loop for long.
QUEUE_CALL_TIMEOUT_SECONDS = 30.0
TICK_LOOP = "tick_loop"  # the supervised loop planning and submitting due jobs


class UnifiedScheduler:
    """Plain class (Ray-free to build); ``get_or_create_scheduler`` makes it an actor."""

    def __init__(
        self,
        data_dir: str,
        config_path: str | None = None,
        simulate: bool = False,
        queue_name: str = QUEUE_ACTOR,
        namespace: str = NAMESPACE,
        tick_seconds: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not tick_seconds > 0:
            raise ValueError(f"tick_seconds must be greater than 0, got {tick_seconds}")
        self.data_dir = location.normalize(data_dir)
        self.config_path = config_path
        self.config = load_config(config_path)
        self.simulate = simulate
        self.queue_name = queue_name
        self.namespace = namespace
        self.tick_seconds = tick_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._state_file = state_path(self.data_dir)
        self.state = load_state(self._state_file)
        self.started_at: datetime | None = None
        self._loops = Supervisor()  # runs TICK_LOOP between start() and stop()
        self._generation = 0  # bumped by start/stop; a loop of an older generation ends
        # Per job name: the background work of a derive or maintenance run, and its outcome.
        self._background_tasks: dict[str, asyncio.Task[None]] = {}
        self._background_results: dict[str, dict[str, Any]] = {}
        self._queue: Any = None
        self.last_tick_error: str | None = None
        if self.state.running:
            self._resume_after_restart()

    def __repr__(self) -> str:  # the name the Ray dashboard shows for this actor
        return f"UnifiedScheduler[{len(self.config.jobs)} jobs]"

    # ------------------------------------------------------------------ public API

    async def start(self) -> dict[str, Any]:
        """Start the loop (idempotent); returns ``stats()``."""
        if not self._loops.running(TICK_LOOP):
            self.started_at = self._clock()
            self.state = SchedulerState(jobs=self.state.jobs, running=True)
            self._save()
            self._generation += 1
            self._loops.start(TICK_LOOP, functools.partial(self._run_loop, self._generation))
        return await self.stats()

    async def stop(self) -> dict[str, Any]:
        """Stop the loop; a restarted actor stays stopped. Submitted requests stay queued."""
        self._generation += 1  # the loop also ends by itself should a cancel get swallowed
        # Bounded: asyncio.wait_for may swallow a cancellation (bpo-42130), hence the generation.
        await self._loops.cancel(TICK_LOOP, timeout=self.tick_seconds + 1.0)
        self.state = SchedulerState(jobs=self.state.jobs, running=False)
        self._save()
        return await self.stats()

    async def run_now(self, job_name: str) -> list[str]:
        """Run one job at once, whatever its schedule says; returns the submitted ids."""
        job = self.config.job(job_name)
        return await self._run_job(job, self._clock(), slot=None, check_pending=False)

    async def tick(self) -> list[str]:
        """One planning round now (the loop calls this; tests may too); names of jobs run."""
        now = self._clock()
        planner = Planner(self.config, simulate=self.simulate, started_at=self.started_at or now)
        ran = []
        for run in planner.due(self.state, now):
            try:
                ids = await self._run_job(run.job, now, slot=run.slot, check_pending=True)
            except Exception as exc:  # one failing job must not stop the others
                log.warning("scheduler job %s failed: %s", run.job.name, exc)
                self._record(run.job.name, last_error=f"{type(exc).__name__}: {exc}")
                self._queue = None  # look the queue up again next time
                continue
            if ids is not None:
                ran.append(run.job.name)
        return ran

    async def stats(self) -> dict[str, Any]:
        """JSON-serializable view: loop state and, per job, last run, next due, last ids."""
        now = self._clock()
        planner = Planner(self.config, simulate=self.simulate, started_at=self.started_at or now)
        jobs = []
        for job in self.config.jobs:
            js = self.state.job(job.name)
            next_due = planner.next_due(job, js, now)
            entry = {
                "name": job.name,
                "type": job.type,
                "symbols": list(job.symbols),
                "priority": int(job.priority),
                "schedule": job.schedule_text,
                "enabled": job.enabled,
                "last_run": _iso(js.last_run),
                "next_due": _iso(next_due),
                "last_request_ids": list(js.last_request_ids),
                "runs": js.runs,
                "skipped_pending": js.skipped_pending,
                "last_error": js.last_error,
            }
            if job.type == DERIVE_STATISTICS:
                task = self._background_tasks.get(job.name)
                entry["derive_running"] = bool(task and not task.done())
                entry["derive_result"] = self._background_results.get(job.name)
            if job.type == MAINTAIN_TABLES:
                task = self._background_tasks.get(job.name)
                entry["maintenance_running"] = bool(task and not task.done())
                entry["maintenance_result"] = self._background_results.get(job.name)
            jobs.append(entry)
        return {
            "running": self._loops.running(TICK_LOOP),
            "tasks": self._loops.stats(),  # the tick loop's state, restarts, last error
            "pid": os.getpid(),  # changes when Ray restarts the actor
            "simulate": self.simulate,
            "started_at": _iso(self.started_at),
            "now": _iso(now),
            "tick_seconds": self.tick_seconds,
            "data_dir": self.data_dir,
            "config_path": self.config_path,
            "queue": self.queue_name,
            "last_tick_error": self.last_tick_error,
            "jobs": jobs,
        }

    async def ping(self) -> str:
        return "pong"

    # ------------------------------------------------------------------ the loop

    async def _run_loop(self, generation: int) -> None:
        while generation == self._generation:
            try:
                await self.tick()
                self.last_tick_error = None
            except Exception as exc:  # keep ticking; stats() shows what went wrong
                log.exception("scheduler tick failed")
                self.last_tick_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.tick_seconds)

    async def _run_job(
        self, job: Job, now: datetime, *, slot: datetime | None, check_pending: bool
    ) -> list[str] | None:
        """Submit one run of ``job``; None when skipped because the last run is pending."""
        if check_pending and await self._previous_run_pending(job):
            previous = self.state.job(job.name)
            self._record(job.name, skipped_pending=previous.skipped_pending + 1)
            scheduler_job(job.name, skipped=True)
            return None
        if job.type == DERIVE_STATISTICS:
            ids = await self._start_derive(job, now)
        elif job.type == MAINTAIN_TABLES:
            ids = self._start_maintenance(job)
        else:
            queue = self._queue_handle()
            ids = await asyncio.wait_for(
                queue.submit_many.remote(job.submissions()), QUEUE_CALL_TIMEOUT_SECONDS
            )
        previous = self.state.job(job.name)
        self._record(
            job.name,
            last_run=now,
            last_slot=slot if slot is not None else previous.last_slot,
            last_request_ids=tuple(ids),
            runs=previous.runs + 1,
            last_error=None,
        )
        scheduler_job(job.name)
        return list(ids)

    async def _previous_run_pending(self, job: Job) -> bool:
        task = self._background_tasks.get(job.name)
        if task is not None and not task.done():
            return True
        ids = self.state.job(job.name).last_request_ids
        if not ids:
            return False
        queue = self._queue_handle()
        requests: list[IBRequest | None] = await asyncio.wait_for(
            asyncio.gather(*(queue.get.remote(rid) for rid in ids)), QUEUE_CALL_TIMEOUT_SECONDS
        )
        return previous_run_pending(r.status if r is not None else None for r in requests)

    # ------------------------------------------------------------------ derive_statistics

    async def _start_derive(self, job: Job, now: datetime) -> list[str]:
        from v6ray.stats.derive import last_completed_session, missing_daily_bars
        from v6ray.storage.reader import read_table

        bars = await asyncio.to_thread(
            read_table, constants.MARKET_BARS_TABLE, data_dir=self.data_dir
        )
        items = missing_daily_bars(
            bars,
            job.symbols,
            last_session=last_completed_session(now, simulate=self.simulate),
            priority=int(job.priority),
        )
        ids: list[str] = []
        if items:
            queue = self._queue_handle()
            ids = await asyncio.wait_for(
                queue.submit_many.remote(items), QUEUE_CALL_TIMEOUT_SECONDS
            )
        self._background_tasks[job.name] = asyncio.get_running_loop().create_task(
            self._derive(job, ids)
        )
        return ids

    async def _derive(self, job: Job, ids: list[str]) -> None:
        from v6ray.stats.derive import combine_derive_results, submit_derive_tasks

        result: dict[str, Any] = {"started_at": _iso(self._clock())}
        try:
            if ids:
                queue = self._queue_handle()
                waits = (queue.wait.remote(rid, DERIVE_BARS_TIMEOUT_SECONDS) for rid in ids)
                outcomes = await asyncio.gather(*waits, return_exceptions=True)
                result["bar_requests_failed"] = sum(
                    1 for o in outcomes if isinstance(o, BaseException) or o.status != "SUCCESS"
                )
            refs = submit_derive_tasks(self.data_dir, list(job.symbols))
            written = combine_derive_results(await asyncio.gather(*refs))
            result.update(rows=written.get("rows"), symbols=written.get("symbols"), error=None)
        except Exception as exc:
            log.warning("derive_statistics job %s failed: %s", job.name, exc)
            result["error"] = f"{type(exc).__name__}: {exc}"
            self._record(job.name, last_error=result["error"])
        result["finished_at"] = _iso(self._clock())
        self._background_results[job.name] = result

    # ------------------------------------------------------------------ maintain_tables

    def _start_maintenance(self, job: Job) -> list[str]:
        """Start the maintenance task in the background; it submits no request (no ids).
        Until it ends, the job's next run is skipped as pending (``_previous_run_pending``)."""
        self._background_tasks[job.name] = asyncio.get_running_loop().create_task(
            self._maintain(job)
        )
        return []

    async def _maintain(self, job: Job) -> None:
        from v6ray.storage.maintenance import maintenance_task

        result: dict[str, Any] = {"started_at": _iso(self._clock())}
        self._background_results[job.name] = result  # stats show this run, not the last
        try:
            tables = await maintenance_task().remote(self.data_dir)
            result["tables"] = tables
            failed = [t["table"] for t in tables if t.get("error")]
            result["error"] = f"failed: {', '.join(failed)}" if failed else None
        except Exception as exc:
            log.warning("maintain_tables job %s failed: %s", job.name, exc)
            result["error"] = f"{type(exc).__name__}: {exc}"
        if result["error"]:
            self._record(job.name, last_error=result["error"])
        result["finished_at"] = _iso(self._clock())
        self._background_results[job.name] = result

    # ------------------------------------------------------------------ internals

    def _queue_handle(self) -> Any:
        if self._queue is None:
            try:
                self._queue = ray.get_actor(self.queue_name, namespace=self.namespace)
            except ValueError:
                raise RuntimeError(
                    f"no {self.queue_name} actor in namespace {self.namespace!r}"
                ) from None
        return self._queue

    def _record(self, name: str, **changes: Any) -> None:
        current = self.state.job(name)
        fields = {**current.__dict__, **changes}
        self.state = self.state.with_job(name, JobState(**fields))
        self._save()

    def _save(self) -> None:
        save_state(self._state_file, self.state)

    def _resume_after_restart(self) -> None:
        """The state says ``start()`` was called: call it again once construction is over
        (outside an actor, in plain-class use, the caller starts it)."""
        call_after_construction("start")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def get_or_create_scheduler(
    data_dir: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] | None = None,
    simulate: bool = False,
    name: str = SCHEDULER_ACTOR,
    namespace: str = NAMESPACE,
    queue_name: str = QUEUE_ACTOR,
    tick_seconds: float = 5.0,
) -> ray.actor.ActorHandle:
    """The named, detached scheduler actor (created if it does not exist; not started).

    The config file is loaded here first, so a mistake raises ``JobConfigError`` in the
    caller rather than a failed actor. Pinned to this node: the state file lives in
    ``data_dir`` on local disk. An existing actor is returned as it is.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    config_file = os.path.abspath(os.fspath(config_path)) if config_path else None
    load_config(config_file)
    here = ray.get_runtime_context().get_node_id()
    return (
        ray.remote(UnifiedScheduler)
        .options(
            name=name,
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
        )
        .remote(
            location.normalize(data_dir),
            config_file,
            simulate,
            queue_name,
            namespace,
            tick_seconds,
        )
    )
