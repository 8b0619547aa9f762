"""What is due now (pure): jobs, their saved state and an injected instant in, runs out.

Rules:

- An interval job is due when ``interval_seconds`` have passed since its last run and, if it
  ``needs_market_open``, its market is open right now (outside trading hours: no snapshots).
- A daily job (``at`` / ``after_close_minutes``) has one *slot* per trading day of its
  market. It is due when the latest slot at or before now has not been run yet and is less
  than ``CATCH_UP_SECONDS`` old: a scheduler that was down over a close catches up once when
  it returns, but one started at 10:00 does not replay last night's job a day late.
- Simulated mode: every market is open; daily jobs additionally run once
  ``first_run_seconds`` after the scheduler started, so a new user sees them work at once.

Backpressure (skipping a run whose previous requests are still queued) needs the queue and
is the actor's; ``previous_run_pending`` is its rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from v6ray.requests.model import Status
from v6ray.scheduler.calendar import market_clock
from v6ray.scheduler.jobs import Job, SchedulerConfig
from v6ray.scheduler.state import JobState, SchedulerState

# A daily slot older than this is not run any more; the next one will be.
CATCH_UP_SECONDS = 12 * 3600.0
_SLOT_SEARCH_DAYS = 10


@dataclass(frozen=True)
class DueRun:
    job: Job
    slot: datetime  # the scheduled instant this run stands for (``now`` for interval jobs)
    reason: str


@dataclass(frozen=True)
class Planner:
    config: SchedulerConfig
    simulate: bool = False
    started_at: datetime | None = None  # simulated mode's first daily run counts from here

    def due(self, state: SchedulerState, now: datetime) -> list[DueRun]:
        """Runs due at ``now``, in config order."""
        runs = []
        for job in self.config.enabled_jobs:
            run = self.due_run(job, state.job(job.name), now)
            if run is not None:
                runs.append(run)
        return runs

    def due_run(self, job: Job, job_state: JobState, now: datetime) -> DueRun | None:
        clock = market_clock(job.market, simulate=self.simulate)
        if not job.is_daily:
            return self._interval_due(job, job_state, now, clock)
        if self._first_run_pending(job_state):
            return self._simulated_first_run(job, now)
        slot = latest_slot(job, clock, now)
        if slot is None or (job_state.last_slot is not None and slot <= job_state.last_slot):
            return None
        if (now - slot).total_seconds() > CATCH_UP_SECONDS:
            return None
        return DueRun(job, slot, f"daily slot {slot.isoformat()}")

    def next_due(self, job: Job, job_state: JobState, now: datetime) -> datetime | None:
        """When the job will next be due (``now`` if it is due already), for ``stats()``."""
        if not job.enabled:
            return None
        if self.due_run(job, job_state, now) is not None:
            return now
        clock = market_clock(job.market, simulate=self.simulate)
        if not job.is_daily:
            assert job.interval_seconds is not None
            last = job_state.last_run
            after = last + timedelta(seconds=job.interval_seconds) if last else now
            return clock.next_open(max(after, now)) if job.needs_market_open else after
        if self._first_run_pending(job_state):
            assert self.started_at is not None
            return self.started_at + timedelta(seconds=self.config.simulated_first_run_seconds)
        return next_slot(job, clock, now)

    # -------------------------------------------------------------------- internals

    def _interval_due(self, job: Job, job_state: JobState, now: datetime, clock) -> DueRun | None:
        if job.needs_market_open and not clock.is_open(now):
            return None
        if job_state.last_run is not None:
            assert job.interval_seconds is not None
            if (now - job_state.last_run).total_seconds() < job.interval_seconds:
                return None
        return DueRun(job, now, "interval")

    def _first_run_pending(self, job_state: JobState) -> bool:
        if not self.simulate or self.started_at is None:
            return False
        return job_state.last_run is None or job_state.last_run < self.started_at

    def _simulated_first_run(self, job: Job, now: datetime) -> DueRun | None:
        assert self.started_at is not None
        if (now - self.started_at).total_seconds() < self.config.simulated_first_run_seconds:
            return None
        clock = market_clock(job.market, simulate=True)
        # Count the run as today's slot so it does not fire again right away.
        slot = latest_slot(job, clock, now) or now
        return DueRun(job, slot, "simulated first run after start")


def _slots(job: Job, clock, first: datetime, last: datetime) -> list[datetime]:
    """The job's slots whose trading day lies between the local dates of ``first`` and ``last``."""
    sessions = clock.sessions(
        first.astimezone(clock.tz).date() - timedelta(days=1),
        last.astimezone(clock.tz).date() + timedelta(days=1),
    )
    out = []
    for session in sessions:
        if job.after_close_minutes is not None:
            out.append(session.close + timedelta(minutes=job.after_close_minutes))
            continue
        assert job.at is not None
        slot = datetime.combine(session.trade_date, job.at, clock.tz)
        if job.needs_market_open and not clock.is_open(slot):
            continue  # e.g. an "at 14:00, needs open" job on a half day
        out.append(slot)
    return sorted(out)


def latest_slot(job: Job, clock, now: datetime) -> datetime | None:
    """The job's latest slot at or before ``now``."""
    earlier = [
        s for s in _slots(job, clock, now - timedelta(days=_SLOT_SEARCH_DAYS), now) if s <= now
    ]
    return earlier[-1] if earlier else None


def next_slot(job: Job, clock, now: datetime) -> datetime | None:
    """The job's first slot after ``now``."""
    later = [s for s in _slots(job, clock, now, now + timedelta(days=_SLOT_SEARCH_DAYS)) if s > now]
    return later[0] if later else None


def previous_run_pending(statuses: Iterable[Status | str | None]) -> bool:
    """True when any request of the previous run is still PENDING or PROCESSING.

    ``None`` (the queue no longer knows the id) counts as finished.
    """
    for status in statuses:
        if status is None:
            continue
        if not Status(str(status)).is_final:
            return True
    return False
