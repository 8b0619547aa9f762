"""Scheduler job config: defaults, TOML loading, and errors that name the job and field."""

from __future__ import annotations

import pickle
from datetime import time

import pytest

from v6ray.errors import JobConfigError
from v6ray.requests.model import Priority
from v6ray.scheduler.jobs import (
    config_from_mapping,
    default_jobs,
    job_from_mapping,
    load_config,
)


def test_defaults_cover_the_issue():
    jobs = {j.name: j for j in default_jobs()}
    assert jobs["option_chains"].symbols == ("SPY", "QQQ", "IWM")
    assert jobs["option_chains"].parameters["dte"] == 45
    assert jobs["option_chains"].needs_market_open
    assert jobs["futures_snapshots"].symbols == ("ES", "NQ", "RTY")
    assert jobs["futures_snapshots"].market == "CME"
    assert jobs["daily_bars"].parameters["bar_size"] == "1 day"
    assert jobs["daily_bars"].after_close_minutes is not None
    assert jobs["positions"].symbols == ("*",)
    assert jobs["derived_statistics"].type == "derive_statistics"
    assert jobs["derived_statistics"].is_daily


def test_table_maintenance_runs_in_the_cme_daily_break_and_takes_no_parameters():
    job = {j.name: j for j in default_jobs()}["table_maintenance"]
    assert job.type == "maintain_tables" and job.market == "CME"
    assert job.after_close_minutes == 5  # 17:05 ET: before CME reopens at 18:00
    with pytest.raises(JobConfigError, match="parameters.days.*takes none"):
        job_from_mapping(
            {"name": "m", "type": "maintain_tables", "parameters": {"days": 3}, "at": "18:00"}
        )


def test_parameters_are_normalized_like_the_queue_does():
    job = job_from_mapping(
        {
            "name": "bars",
            "type": "market_bars",
            "symbols": ["spy"],
            "parameters": {"bar_size": "1 DAY", "duration": "10 D"},
            "interval_seconds": 60,
        }
    )
    assert job.symbols == ("SPY",)
    assert job.parameters == {
        "duration": "10 D",
        "bar_size": "1 day",
        "what_to_show": "TRADES",
        "use_rth": True,
    }
    assert job.submissions() == [
        {
            "request_type": "market_bars",
            "symbol": "SPY",
            "priority": 2,
            "parameters": job.parameters,
        }
    ]


def test_toml_file_overrides_defaults_and_switches_jobs_off(tmp_path):
    path = tmp_path / "scheduler.toml"
    path.write_text(
        """
[scheduler]
simulated_first_run_seconds = 5

[[jobs]]
name = "option_chains"
type = "option_chain"
symbols = ["SPY"]
parameters = { dte = 30, strikes = 5 }
priority = "IMMEDIATE"
interval_seconds = 120
needs_market_open = true

[[jobs]]
name = "futures_snapshots"
enabled = false

[[jobs]]
name = "vix_close"
type = "market_bars"
symbols = ["SPY"]
parameters = { bar_size = "1 hour", duration = "1 D" }
at = "15:45"
"""
    )
    config = load_config(path)
    assert config.simulated_first_run_seconds == 5
    chains = config.job("option_chains")
    assert chains.symbols == ("SPY",) and chains.priority is Priority.IMMEDIATE
    assert chains.parameters["strikes"] == 5
    assert not config.job("futures_snapshots").enabled
    assert config.job("vix_close").at == time(15, 45)
    assert "futures_snapshots" not in {j.name for j in config.enabled_jobs}
    assert "daily_bars" in {j.name for j in config.enabled_jobs}


def test_replace_defaults_keeps_only_file_jobs():
    config = config_from_mapping(
        {
            "scheduler": {"replace_defaults": True},
            "jobs": [
                {"name": "p", "type": "position_update", "symbols": "*", "interval_seconds": 60}
            ],
        }
    )
    assert [j.name for j in config.jobs] == ["p"]


def test_a_job_on_the_scheduled_symbols_follows_every_other_enabled_job():
    config = config_from_mapping(
        {
            "scheduler": {"replace_defaults": True},
            "jobs": [
                {"name": "chains", "type": "option_chain", "symbols": ["SPY", "QQQ"],
                 "interval_seconds": 60},
                {"name": "bars", "type": "market_bars", "symbols": ["qqq", "AAPL"],
                 "after_close_minutes": 10},
                {"name": "off", "type": "market_bars", "symbols": ["TSLA"], "at": "09:00",
                 "enabled": False},
                {"name": "positions", "type": "position_update", "symbols": "*",
                 "interval_seconds": 60},
                {"name": "all_bars", "type": "market_bars", "symbols": "scheduled",
                 "parameters": {"bar_size": "1 day"}, "at": "07:00"},
            ],
        }
    )
    follower = {j.name: j for j in config.jobs}["all_bars"]
    # In order of first mention; a switched-off job's symbols and "*" are not collected.
    assert follower.symbols == ("SPY", "QQQ", "AAPL")
    assert [s["symbol"] for s in follower.submissions()] == ["SPY", "QQQ", "AAPL"]
    assert follower.parameters["bar_size"] == "1 day"


def test_derived_statistics_can_follow_the_scheduled_symbols_too():
    config = config_from_mapping(
        {
            "scheduler": {"replace_defaults": True},
            "jobs": [
                {"name": "bars", "type": "market_bars", "symbols": ["SPY", "QQQ"], "at": "07:00"},
                {"name": "stats", "type": "derive_statistics", "symbols": "scheduled",
                 "after_close_minutes": 30},
            ],
        }
    )
    assert {j.name: j for j in config.jobs}["stats"].symbols == ("SPY", "QQQ")


def test_a_scheduled_symbol_its_type_refuses_names_the_following_job():
    with pytest.raises(JobConfigError) as caught:
        config_from_mapping(
            {
                "scheduler": {"replace_defaults": True},
                "jobs": [
                    {"name": "fut", "type": "futures_snapshot", "symbols": ["ES"],
                     "parameters": {"contract_month": "202612"}, "interval_seconds": 60},
                    {"name": "chains", "type": "option_chain", "symbols": "scheduled",
                     "parameters": {"dte": 5000}, "interval_seconds": 60},
                ],
            }
        )
    assert (caught.value.job, caught.value.field) == ("chains", "parameters.dte")


@pytest.mark.parametrize(
    ("raw", "job", "field"),
    [
        ({"name": "x", "type": "quotes", "symbols": ["SPY"], "interval_seconds": 5}, "x", "type"),
        (
            {"name": "x", "type": "option_chain", "symbols": [], "interval_seconds": 5},
            "x",
            "symbols",
        ),
        ({"name": "x", "type": "option_chain", "symbols": ["SPY"]}, "x", "interval_seconds"),
        (
            {
                "name": "x",
                "type": "option_chain",
                "symbols": ["SPY"],
                "interval_seconds": 5,
                "at": "10:00",
            },
            "x",
            "interval_seconds",
        ),
        (
            {"name": "x", "type": "option_chain", "symbols": ["SPY"], "interval_seconds": 0},
            "x",
            "interval_seconds",
        ),
        ({"name": "x", "type": "option_chain", "symbols": ["SPY"], "at": "25:00"}, "x", "at"),
        (
            {
                "name": "x",
                "type": "option_chain",
                "symbols": ["SPY"],
                "interval_seconds": 5,
                "parameters": {"dte": -1},
            },
            "x",
            "parameters.dte",
        ),
        (
            {
                "name": "x",
                "type": "option_chain",
                "symbols": ["SPY"],
                "interval_seconds": 5,
                "priority": 7,
            },
            "x",
            "priority",
        ),
        (
            {
                "name": "x",
                "type": "option_chain",
                "symbols": ["SPY"],
                "interval_seconds": 5,
                "color": 1,
            },
            "x",
            "color",
        ),
        (
            {
                "name": "x",
                "type": "option_chain",
                "symbols": ["SPY"],
                "interval_seconds": 5,
                "market": "LSE",
            },
            "x",
            "market",
        ),
        (
            {
                "name": "x",
                "type": "market_bars",
                "symbols": ["SPY"],
                "after_close_minutes": 5,
                "needs_market_open": True,
            },
            "x",
            "needs_market_open",
        ),
        (
            {
                "name": "x",
                "type": "derive_statistics",
                "symbols": ["SPY"],
                "after_close_minutes": 5,
                "parameters": {"a": 1},
            },
            "x",
            "parameters.a",
        ),
        ({"name": "bad name!", "type": "option_chain"}, "#1", "name"),
    ],
)
def test_bad_job_names_job_and_field(raw, job, field):
    with pytest.raises(JobConfigError) as caught:
        config_from_mapping({"scheduler": {"replace_defaults": True}, "jobs": [raw]})
    assert caught.value.job == job
    assert caught.value.field == field
    assert job in str(caught.value) and field in str(caught.value)


def test_file_errors_are_clear(tmp_path):
    with pytest.raises(JobConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[jobs]\nname=")
    with pytest.raises(JobConfigError, match="not TOML"):
        load_config(broken)
    twice = {
        "jobs": [{"name": "positions", "enabled": False}, {"name": "positions", "enabled": False}]
    }
    with pytest.raises(JobConfigError, match="twice"):
        config_from_mapping(twice)
    with pytest.raises(JobConfigError, match="unknown top-level"):
        config_from_mapping({"job": []})


def test_config_error_survives_pickling():
    error = JobConfigError("option_chains", "interval_seconds", "must be a number")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.job, copy.field, str(copy)) == (error.job, error.field, str(error))
