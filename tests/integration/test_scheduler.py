"""UnifiedScheduler in simulated mode against a real queue (and later gateway + simulator)."""

from __future__ import annotations

import polars as pl
import pytest
import ray

from tests.helpers import wait_for
from v6ray.gateway.testing import GatewayHarness
from v6ray.scheduler.actor import get_or_create_scheduler
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import TABLES

pytestmark = pytest.mark.timeout(240)
BAR_KEY = list(TABLES["market_bars"].key_columns)

JOBS = """
[scheduler]
replace_defaults = true
simulated_first_run_seconds = 1

[[jobs]]
name = "chains"
type = "option_chain"
symbols = ["SPY"]
parameters = { dte_min = 14, dte_max = 60, strikes = 2 }
interval_seconds = 1
needs_market_open = true

[[jobs]]
name = "futures"
type = "futures_snapshot"
symbols = ["ES", "NQ"]
interval_seconds = 1
needs_market_open = true
market = "CME"

[[jobs]]
name = "daily_bars"
type = "market_bars"
symbols = ["SPY"]
parameters = { duration = "5 D", bar_size = "1 day" }
after_close_minutes = 10

[[jobs]]
name = "stats"
type = "derive_statistics"
symbols = ["SPY"]
after_close_minutes = 30

[[jobs]]
name = "maintenance"
type = "maintain_tables"
after_close_minutes = 5
market = "CME"
"""


def job_stats(scheduler) -> dict[str, dict]:
    return {j["name"]: j for j in ray.get(scheduler.stats.remote(), timeout=30)["jobs"]}


def test_simulated_scheduler_submits_skips_duplicates_resumes_and_fills_tables(
    ray_namespace, data_dir, tmp_path
):
    config = tmp_path / "jobs.toml"
    config.write_text(JOBS)
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01, start_gateway=False) as h:
        scheduler = get_or_create_scheduler(
            data_dir, config_path=config, simulate=True, namespace=ray_namespace, tick_seconds=0.3
        )
        assert ray.get(scheduler.start.remote(), timeout=60)["running"]

        # Every job runs (simulated: market always open, daily jobs 1 s after start).
        wait_for(lambda: all(j["runs"] >= 1 for j in job_stats(scheduler).values()), 30,
                 interval=0.25)
        # No gateway yet: requests stay PENDING, later ticks skip instead of piling up.
        wait_for(lambda: job_stats(scheduler)["chains"]["skipped_pending"] >= 3, 30, interval=0.25)
        requests = read_table("ib_requests", data_dir=data_dir)
        per_request = requests.group_by("request_type", "symbol", "parameters").len()
        assert per_request["len"].max() == 1, per_request
        assert set(requests["request_type"]) == {"option_chain", "futures_snapshot", "market_bars"}
        assert set(requests["status"]) == {"PENDING"}
        queue_stats = ray.get(h.queue.stats.remote(), timeout=30)
        assert queue_stats["submitted_total"] == requests.height  # nothing coalesced: skipped
        before = job_stats(scheduler)
        old_pid = ray.get(scheduler.stats.remote(), timeout=30)["pid"]

        # An actor restart resumes the loop with its state (start is remembered on disk).
        ray.kill(scheduler, no_restart=False)
        # A new worker process: over a minute when the two cores are busy.
        wait_for(lambda: _restarted_and_running(scheduler, old_pid), 180, interval=0.25)
        after = job_stats(scheduler)
        assert after["chains"]["runs"] >= before["chains"]["runs"]
        assert after["chains"]["last_request_ids"] == before["chains"]["last_request_ids"] or (
            after["chains"]["runs"] > before["chains"]["runs"]
        )

        # With the gateway up, the backlog drains and every table fills.
        h.start_gateway()
        for table in ("option_snapshots", "futures_snapshots", "market_bars", "derived_statistics"):
            wait_for(lambda t=table: read_table(t, data_dir=data_dir).height > 0, 120, interval=1.0)
        derived = read_table("derived_statistics", data_dir=data_dir)
        assert derived.filter(pl.col("symbol") == "SPY").height > 0
        wait_for(lambda: job_stats(scheduler)["chains"]["runs"] > after["chains"]["runs"], 30,
                 interval=0.25)

        # Maintenance runs as a Ray task while the jobs keep writing; the table rules hold.
        ray.get(scheduler.run_now.remote("maintenance"), timeout=30)
        wait_for(lambda: _maintenance_done(scheduler), 120, interval=0.5)
        result = job_stats(scheduler)["maintenance"]["maintenance_result"]
        assert result["error"] is None, result
        compacted = {t["table"] for t in result["tables"] if t.get("files_after") is not None}
        assert {"market_bars", "option_snapshots", "futures_snapshots"} <= compacted
        bars = read_table("market_bars", data_dir=data_dir)
        assert bars.select(BAR_KEY).is_unique().all()
        for table in ("option_snapshots", "futures_snapshots"):
            rows = read_table(table, data_dir=data_dir)
            assert rows.select(["request_id", "con_id"]).is_unique().all(), table

        stopped = ray.get(scheduler.stop.remote(), timeout=30)
        assert not stopped["running"]


def _maintenance_done(scheduler) -> bool:
    job = job_stats(scheduler)["maintenance"]
    result = job.get("maintenance_result")
    return not job["maintenance_running"] and bool(result) and "finished_at" in result


def _restarted_and_running(scheduler, old_pid: int) -> bool:
    """True once a new actor process (not the one being killed) runs the loop."""
    try:
        stats = ray.get(scheduler.stats.remote(), timeout=5)
    except ray.exceptions.RayError:  # restarting: unavailable, or a timeout
        return False
    return stats["pid"] != old_pid and stats["running"]
