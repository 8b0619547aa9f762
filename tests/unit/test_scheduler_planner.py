"""What is due when: interval jobs in market hours, daily jobs after the (early) close,
holidays skipped, simulated mode, state round trips. The clock is always injected."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from v6ray.requests.model import Status
from v6ray.scheduler.jobs import SchedulerConfig, default_jobs, job_from_mapping
from v6ray.scheduler.planner import CATCH_UP_SECONDS, Planner, previous_run_pending
from v6ray.scheduler.state import (
    JobState,
    SchedulerState,
    load_state,
    save_state,
    state_path,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


CONFIG = SchedulerConfig(jobs=default_jobs())
PLANNER = Planner(CONFIG)


def due_names(planner: Planner, state: SchedulerState, now: datetime) -> set[str]:
    return {run.job.name for run in planner.due(state, now)}


def ran(state: SchedulerState, planner: Planner, now: datetime, *names: str) -> SchedulerState:
    """Record the runs due at ``now`` (of ``names`` only, if given) as the actor would."""
    for run in planner.due(state, now):
        if names and run.job.name not in names:
            continue
        previous = state.job(run.job.name)
        state = state.with_job(
            run.job.name,
            JobState(
                last_run=now,
                last_slot=run.slot if run.job.is_daily else None,
                runs=previous.runs + 1,
            ),
        )
    return state


def test_snapshot_jobs_fire_on_their_interval_while_open():
    open_time = utc(2026, 11, 24, 15, 0)  # Tuesday 10:00 ET
    state = SchedulerState()
    assert {"option_chains", "futures_snapshots", "positions"} <= due_names(
        PLANNER, state, open_time
    )
    state = ran(state, PLANNER, open_time)
    assert due_names(PLANNER, state, open_time + timedelta(seconds=59)) == set()
    assert due_names(PLANNER, state, open_time + timedelta(seconds=60)) == {"futures_snapshots"}
    assert "option_chains" not in due_names(PLANNER, state, open_time + timedelta(seconds=299))
    assert "option_chains" in due_names(PLANNER, state, open_time + timedelta(seconds=300))


def test_no_snapshots_outside_trading_hours_or_on_holidays():
    state = ran(SchedulerState(), PLANNER, utc(2026, 11, 24, 15, 0))
    for closed in (
        utc(2026, 11, 24, 21, 5),  # after the close (futures still trade, options do not)
        utc(2026, 11, 26, 16, 0),  # Thanksgiving
        utc(2026, 11, 27, 18, 5),  # after the 13:00 half-day close
        utc(2026, 12, 25, 16, 0),  # Christmas
        utc(2026, 11, 28, 16, 0),  # Saturday
    ):
        assert "option_chains" not in due_names(PLANNER, state, closed), closed
    # Futures: closed on Christmas and on Saturday, but open Sunday evening.
    assert "futures_snapshots" not in due_names(PLANNER, state, utc(2026, 12, 25, 16, 0))
    assert "futures_snapshots" not in due_names(PLANNER, state, utc(2026, 11, 28, 16, 0))
    assert "futures_snapshots" in due_names(PLANNER, state, utc(2026, 11, 29, 23, 30))
    # Positions do not need the market.
    assert "positions" in due_names(PLANNER, state, utc(2026, 11, 28, 16, 0))


def test_after_close_job_fires_after_the_regular_close():
    derive = CONFIG.job("derived_statistics")  # 30 min after the close
    state = SchedulerState()
    assert PLANNER.due_run(derive, state.job(derive.name), utc(2026, 11, 24, 21, 29)) is None
    run = PLANNER.due_run(derive, state.job(derive.name), utc(2026, 11, 24, 21, 31))
    assert run is not None and run.slot == utc(2026, 11, 24, 21, 30)
    done = JobState(last_run=utc(2026, 11, 24, 21, 31), last_slot=run.slot)
    assert PLANNER.due_run(derive, done, utc(2026, 11, 24, 23, 0)) is None
    assert PLANNER.next_due(derive, done, utc(2026, 11, 24, 23, 0)) == utc(2026, 11, 25, 21, 30)


def test_after_close_job_follows_the_half_day_and_skips_thanksgiving():
    derive = CONFIG.job("derived_statistics")
    wednesday = JobState(last_run=utc(2026, 11, 25, 21, 31), last_slot=utc(2026, 11, 25, 21, 30))
    # Thanksgiving evening: no session, nothing due.
    assert PLANNER.due_run(derive, wednesday, utc(2026, 11, 26, 22, 0)) is None
    # Next due is Friday 13:00 ET close + 30 min, not 16:30.
    assert PLANNER.next_due(derive, wednesday, utc(2026, 11, 26, 22, 0)) == utc(
        2026, 11, 27, 18, 30
    )
    assert PLANNER.due_run(derive, wednesday, utc(2026, 11, 27, 18, 29)) is None
    run = PLANNER.due_run(derive, wednesday, utc(2026, 11, 27, 18, 31))
    assert run is not None and run.slot == utc(2026, 11, 27, 18, 30)


def test_after_close_job_skips_christmas():
    derive = CONFIG.job("derived_statistics")
    eve = JobState(last_run=utc(2026, 12, 24, 18, 31), last_slot=utc(2026, 12, 24, 18, 30))
    assert PLANNER.due_run(derive, eve, utc(2026, 12, 25, 22, 0)) is None
    assert PLANNER.next_due(derive, eve, utc(2026, 12, 25, 22, 0)) == utc(2026, 12, 28, 21, 30)


def test_daily_job_catches_up_once_but_not_a_day_late():
    derive = CONFIG.job("derived_statistics")
    # Down over the close, back at 19:00 ET: runs once for the missed slot.
    assert PLANNER.due_run(derive, JobState(), utc(2026, 11, 25, 0, 0)) is not None
    # Started next morning at 10:00 ET: yesterday's slot is too old.
    assert CATCH_UP_SECONDS < 17.5 * 3600
    assert PLANNER.due_run(derive, JobState(), utc(2026, 11, 24, 15, 0)) is None


def test_time_of_day_job_runs_on_trading_days_at_exchange_time():
    job = job_from_mapping(
        {
            "name": "noon",
            "type": "market_bars",
            "symbols": ["SPY"],
            "at": "12:30",
            "needs_market_open": True,
        }
    )
    before = JobState(last_run=utc(2026, 11, 25, 17, 30), last_slot=utc(2026, 11, 25, 17, 30))
    # Wednesday 12:30 ET = 17:30 UTC; Friday half day is still open at 12:30.
    run = PLANNER.due_run(job, before, utc(2026, 11, 27, 17, 31))
    assert run is not None and run.slot == utc(2026, 11, 27, 17, 30)
    assert PLANNER.due_run(job, before, utc(2026, 11, 26, 17, 31)) is None  # Thanksgiving
    late = job_from_mapping(
        {
            "name": "late",
            "type": "market_bars",
            "symbols": ["SPY"],
            "at": "14:00",
            "needs_market_open": True,
        }
    )
    # 14:00 ET on the half day is after the close: skipped, next is Monday.
    wed = JobState(last_run=utc(2026, 11, 25, 19, 0), last_slot=utc(2026, 11, 25, 19, 0))
    assert PLANNER.due_run(late, wed, utc(2026, 11, 27, 19, 1)) is None
    assert PLANNER.next_due(late, wed, utc(2026, 11, 27, 19, 1)) == utc(2026, 11, 30, 19, 0)


def test_simulated_mode_is_always_open_and_runs_daily_jobs_soon_after_start():
    saturday_night = utc(2026, 11, 29, 4, 0)  # Saturday 23:00 ET
    planner = Planner(CONFIG, simulate=True, started_at=saturday_night)
    state = SchedulerState()
    assert due_names(planner, state, saturday_night) == {
        "option_chains",
        "futures_snapshots",
        "positions",
    }
    state = ran(state, planner, saturday_night)
    soon = saturday_night + timedelta(seconds=CONFIG.simulated_first_run_seconds)
    assert due_names(planner, state, soon - timedelta(seconds=1)) == set()
    assert due_names(planner, state, soon) >= {"daily_bars", "derived_statistics"}
    assert (
        planner.next_due(CONFIG.job("daily_bars"), state.job("daily_bars"), saturday_night) == soon
    )
    state = ran(state, planner, soon, "daily_bars", "derived_statistics")
    later = soon + timedelta(minutes=5)
    assert not due_names(planner, state, later) & {"daily_bars", "derived_statistics"}
    # Next simulated close (16:00 ET Sunday) + 30 min.
    assert planner.next_due(
        CONFIG.job("derived_statistics"), state.job("derived_statistics"), later
    ) == (utc(2026, 11, 29, 21, 30))
    # A restart re-arms the first run: it happens again shortly after the new start.
    restarted = Planner(CONFIG, simulate=True, started_at=later)
    assert "daily_bars" not in due_names(restarted, state, later)
    assert "daily_bars" in due_names(
        restarted, state, later + timedelta(seconds=CONFIG.simulated_first_run_seconds)
    )


def test_disabled_jobs_never_run():
    config = SchedulerConfig(
        jobs=tuple(j if j.name != "positions" else _disabled(j) for j in default_jobs())
    )
    assert "positions" not in due_names(Planner(config), SchedulerState(), utc(2026, 11, 24, 15, 0))
    assert (
        Planner(config).next_due(config.job("positions"), JobState(), utc(2026, 11, 24, 15, 0))
        is None
    )


def _disabled(job):
    from dataclasses import replace

    return replace(job, enabled=False)


def test_previous_run_pending_rule():
    assert previous_run_pending([Status.SUCCESS, Status.PENDING])
    assert previous_run_pending(["PROCESSING"])
    assert not previous_run_pending([Status.SUCCESS, Status.FAILED, Status.CANCELLED, None])
    assert not previous_run_pending([])


def test_state_round_trips_atomically(tmp_path):
    path = state_path(tmp_path)
    state = SchedulerState(running=True).with_job(
        "option_chains",
        JobState(
            last_run=utc(2026, 11, 24, 15, 0),
            last_slot=None,
            last_request_ids=("a", "b"),
            runs=3,
            skipped_pending=1,
            last_error="boom",
        ),
    )
    save_state(path, state)
    assert load_state(path) == state
    assert os.listdir(os.path.dirname(path)) == ["scheduler_state.json"]  # no temp file left
    with open(path) as handle:
        assert json.load(handle)["version"] == 1


def test_missing_or_corrupt_state_starts_fresh(tmp_path):
    path = state_path(tmp_path)
    assert load_state(path) == SchedulerState()
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("{not json")
    assert load_state(path) == SchedulerState()
    assert os.path.exists(path + ".corrupt")
