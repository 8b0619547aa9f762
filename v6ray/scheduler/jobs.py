"""Scheduled jobs: the model, the built-in defaults, and loading a TOML config file (pure).

A job says *what* to enqueue (a request type, or ``derive_statistics``, for some symbols;
or ``maintain_tables``, the result tables' compaction, vacuum and checkpoint) and *when*:
exactly one of

- ``interval_seconds``: every so often, optionally only while its market is open;
- ``at = "HH:MM"``: once per trading day of its market, at that exchange-local time;
- ``after_close_minutes``: once per trading day, that many minutes after the market's
  close, which follows half days (13:00 ET on the day after Thanksgiving).

Config file (TOML)::

    [scheduler]
    replace_defaults = false           # true: only the jobs of this file run
    simulated_first_run_seconds = 20   # simulated mode: daily jobs also run this soon after start

    [[jobs]]
    name = "option_chains"             # same name as a default job: replaces it
    type = "option_chain"              # a request type (`v6ray submit --help` lists them),
                                       # derive_statistics, or
                                       # maintain_tables (no symbols, no parameters)
    symbols = ["SPY", "QQQ", "IWM"]    # or "scheduled": every symbol the other jobs name
    parameters = { dte = 45 }
    priority = 2                       # 1 IMMEDIATE, 2 NORMAL, 3 BACKGROUND
    interval_seconds = 300
    needs_market_open = true
    market = "XNYS"                    # XNYS (equities, options) or CME (futures)

    [[jobs]]
    name = "futures_snapshots"
    enabled = false                    # switch a default job off

A mistake raises ``JobConfigError`` naming the job and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from functools import partial
from typing import Any

from v6ray.errors import InvalidRequest, JobConfigError
from v6ray.requests.model import ALL_SYMBOLS, Priority, RequestType, new_request, parse_priority
from v6ray.requests.registry import SPECS, spec_for

DERIVE_STATISTICS = "derive_statistics"
MAINTAIN_TABLES = "maintain_tables"
JOB_TYPES = (*(t.value for t in RequestType), DERIVE_STATISTICS, MAINTAIN_TABLES)
MARKETS = ("XNYS", "CME")
# ``symbols = "scheduled"``: the symbols of every other enabled job (reference data such as
# contract details follows whatever the shop collects, without a second list to keep).
SCHEDULED_SYMBOLS = "scheduled"
# Simulated mode runs the daily (after-close / time-of-day) jobs once this soon after start,
# so that a newcomer sees every table fill without waiting for a real close.
DEFAULT_SIMULATED_FIRST_RUN_SECONDS = 20.0
MIN_INTERVAL_SECONDS = 1.0  # below this a job is a busy loop, not a schedule

_JOB_FIELDS = frozenset(
    {
        "name",
        "type",
        "symbols",
        "parameters",
        "priority",
        "interval_seconds",
        "at",
        "after_close_minutes",
        "needs_market_open",
        "market",
        "enabled",
    }
)
_SCHEDULER_FIELDS = frozenset({"replace_defaults", "simulated_first_run_seconds"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_AT_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Job:
    """One periodic job. Build with ``job_from_mapping`` to get validation."""

    name: str
    type: str  # a RequestType value, DERIVE_STATISTICS or MAINTAIN_TABLES
    symbols: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    priority: Priority = Priority.NORMAL
    interval_seconds: float | None = None
    at: time | None = None  # exchange-local time of day
    after_close_minutes: int | None = None
    needs_market_open: bool = False
    market: str = "XNYS"
    enabled: bool = True
    follows_scheduled_symbols: bool = False  # symbols = "scheduled" (resolved by the config)

    @property
    def is_daily(self) -> bool:
        """Runs once per trading day (``at`` or ``after_close_minutes``), not on an interval."""
        return self.interval_seconds is None

    @property
    def schedule_text(self) -> str:
        if self.interval_seconds is not None:
            when = f"every {self.interval_seconds:g} s"
            return when + (f" while {self.market} is open" if self.needs_market_open else "")
        if self.at is not None:
            return f"{self.market} trading days at {self.at:%H:%M} exchange time"
        return f"{self.after_close_minutes} min after each {self.market} close"

    def submissions(self) -> list[dict[str, Any]]:
        """The ``submit_many`` items of one run (request jobs only)."""
        return [
            {
                "request_type": self.type,
                "symbol": symbol,
                "priority": int(self.priority),
                "parameters": dict(self.parameters),
            }
            for symbol in self.symbols
        ]


@dataclass(frozen=True)
class SchedulerConfig:
    jobs: tuple[Job, ...]
    simulated_first_run_seconds: float = DEFAULT_SIMULATED_FIRST_RUN_SECONDS

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.jobs)
        raise JobConfigError(name, "name", f"no such job; known jobs: {known}")

    @property
    def enabled_jobs(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.enabled)


# ---------------------------------------------------------------------------- defaults

DEFAULT_JOB_MAPPINGS: tuple[Mapping[str, Any], ...] = (
    # Each request type's own jobs, declared in its spec (``v6ray.requests.types``).
    *(job for spec in SPECS.values() for job in spec.default_jobs),
    {
        # After daily_bars (10 min after the close) has had time to land.
        "name": "derived_statistics",
        "type": DERIVE_STATISTICS,
        "symbols": ["SPY", "QQQ", "IWM"],
        "after_close_minutes": 30,
        "priority": 3,
        "market": "XNYS",
    },
    {
        # Compaction, vacuum, checkpoint of the result tables, in CME's daily break
        # (17:00-18:00 ET): equities closed an hour ago, daily bars and statistics are
        # written, and no futures snapshots arrive, so few writers race the rewrite.
        "name": "table_maintenance",
        "type": MAINTAIN_TABLES,
        "after_close_minutes": 5,
        "priority": 3,
        "market": "CME",
    },
)


def default_jobs() -> tuple[Job, ...]:
    return tuple(job_from_mapping(m) for m in DEFAULT_JOB_MAPPINGS)


# ---------------------------------------------------------------------------- parsing


def job_from_mapping(raw: Mapping[str, Any], *, position: int | None = None) -> Job:
    """Validate one job table; raises ``JobConfigError`` naming the job and field."""
    label = f"#{position + 1}" if position is not None else "?"
    if not isinstance(raw, Mapping):
        raise JobConfigError(label, "job", f"must be a table, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise JobConfigError(label, "name", f"must be 1-64 letters, digits, '_.-', got {name!r}")
    unknown = sorted(set(raw) - _JOB_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(_JOB_FIELDS))
        raise JobConfigError(name, unknown[0], f"unknown field; allowed: {allowed}")

    def fail(field_name: str, reason: str) -> JobConfigError:
        return JobConfigError(name, field_name, reason)

    job_type = raw.get("type")
    if job_type not in JOB_TYPES:
        raise fail("type", f"{job_type!r} is not one of {', '.join(JOB_TYPES)}")
    # Maintenance is of tables, not symbols: it needs none.
    default_symbols = ["*"] if job_type == MAINTAIN_TABLES else None
    follows = raw.get("symbols") == SCHEDULED_SYMBOLS
    # Checked as if for one symbol here; for each of them once they are known.
    symbols = ("SPY",) if follows else _symbols(raw.get("symbols", default_symbols), fail)
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise fail("parameters", f"must be a table, got {type(parameters).__name__}")
    try:
        priority = parse_priority(raw.get("priority", Priority.NORMAL))
    except InvalidRequest as exc:
        raise fail("priority", exc.reason) from None
    enabled = _bool(raw.get("enabled", True), "enabled", fail)
    needs_open = _bool(raw.get("needs_market_open", False), "needs_market_open", fail)
    market = raw.get("market", spec_for(job_type).market if job_type in SPECS else "XNYS")
    if market not in MARKETS:
        raise fail("market", f"{market!r} is not one of {', '.join(MARKETS)}")

    interval, at, after_close = _when(raw, fail)
    if needs_open and after_close is not None:
        raise fail("needs_market_open", "an after-close job runs while the market is closed")

    normalized = _normalized_parameters(job_type, symbols, dict(parameters), fail)
    return Job(
        name=name,
        type=job_type,
        symbols=() if follows else symbols,
        parameters=normalized,
        priority=priority,
        interval_seconds=interval,
        at=at,
        after_close_minutes=after_close,
        needs_market_open=needs_open,
        market=market,
        enabled=enabled,
        follows_scheduled_symbols=follows,
    )


def with_scheduled_symbols(jobs: tuple[Job, ...]) -> tuple[Job, ...]:
    """``jobs`` with each ``symbols = "scheduled"`` job given the symbols of every other
    enabled job (in order of first mention; "*" is not a symbol), each checked as a request."""
    named: list[str] = []
    for job in jobs:
        if job.enabled and not job.follows_scheduled_symbols and job.type != MAINTAIN_TABLES:
            named += [s for s in job.symbols if s != ALL_SYMBOLS and s not in named]
    resolved = []
    for job in jobs:
        if job.follows_scheduled_symbols:
            fail = partial(JobConfigError, job.name)  # fail(field, reason), as for the others
            _normalized_parameters(job.type, named, dict(job.parameters), fail)
            job = replace(job, symbols=tuple(named))
        resolved.append(job)
    return tuple(resolved)


def _symbols(value: Any, fail) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise fail("symbols", "must be a non-empty list of symbols")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise fail("symbols", f"{item!r} is not a symbol")
        symbol = item.strip().upper()
        if symbol not in out:
            out.append(symbol)
    return tuple(out)


def _bool(value: Any, field_name: str, fail) -> bool:
    if not isinstance(value, bool):
        raise fail(field_name, f"must be true or false, got {value!r}")
    return value


def _when(raw: Mapping[str, Any], fail) -> tuple[float | None, time | None, int | None]:
    given = [k for k in ("interval_seconds", "at", "after_close_minutes") if k in raw]
    if len(given) != 1:
        raise fail(
            "interval_seconds",
            "give exactly one of interval_seconds, at, after_close_minutes"
            + (f" (got {', '.join(given)})" if given else ""),
        )
    key = given[0]
    value = raw[key]
    if key == "interval_seconds":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(key, f"must be a number of seconds, got {value!r}")
        if value < MIN_INTERVAL_SECONDS:
            raise fail(key, f"must be at least {MIN_INTERVAL_SECONDS:g}, got {value!r}")
        return float(value), None, None
    if key == "at":
        match = _AT_RE.match(value) if isinstance(value, str) else None
        if not match:
            raise fail(key, f"must be HH:MM (exchange time zone), got {value!r}")
        return None, time(int(match.group(1)), int(match.group(2))), None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6 * 60:
        raise fail(key, f"must be whole minutes within 0..360, got {value!r}")
    return None, None, value


def _normalized_parameters(job_type: str, symbols, parameters: dict, fail) -> dict[str, Any]:
    """Validate through the request model itself, so a job can never enqueue a bad request."""
    if job_type == MAINTAIN_TABLES:
        if parameters:
            raise fail(f"parameters.{next(iter(parameters))}", "maintain_tables takes none")
        return {}
    if job_type == DERIVE_STATISTICS:
        if parameters:
            raise fail(f"parameters.{next(iter(parameters))}", "derive_statistics takes none")
        for symbol in symbols:
            _request_or_fail(RequestType.MARKET_BARS.value, symbol, {}, fail)
        return {}
    normalized: dict[str, Any] = {}
    for symbol in symbols:
        normalized = _request_or_fail(job_type, symbol, parameters, fail).parameters
    return normalized


def _request_or_fail(job_type: str, symbol: str, parameters: dict, fail):
    try:
        return new_request(job_type, symbol, parameters=parameters)
    except InvalidRequest as exc:
        raise fail(exc.field, exc.reason) from None


# ---------------------------------------------------------------------------- loading


def config_from_mapping(data: Mapping[str, Any]) -> SchedulerConfig:
    """Defaults merged with a parsed config (file jobs replace defaults of the same name)."""
    unknown = sorted(set(data) - {"scheduler", "jobs"})
    if unknown:
        raise JobConfigError("*", unknown[0], "unknown top-level key; allowed: scheduler, jobs")
    settings = data.get("scheduler", {})
    if not isinstance(settings, Mapping):
        raise JobConfigError("*", "scheduler", "must be a table")
    bad = sorted(set(settings) - _SCHEDULER_FIELDS)
    if bad:
        raise JobConfigError("*", f"scheduler.{bad[0]}", "unknown setting")
    replace_defaults = settings.get("replace_defaults", False)
    if not isinstance(replace_defaults, bool):
        raise JobConfigError("*", "scheduler.replace_defaults", "must be true or false")
    first_run = settings.get("simulated_first_run_seconds", DEFAULT_SIMULATED_FIRST_RUN_SECONDS)
    if isinstance(first_run, bool) or not isinstance(first_run, int | float) or first_run < 0:
        raise JobConfigError("*", "scheduler.simulated_first_run_seconds", "must be >= 0")

    raw_jobs = data.get("jobs", [])
    if not isinstance(raw_jobs, list):
        raise JobConfigError("*", "jobs", "must be an array of tables ([[jobs]])")
    jobs: dict[str, Job] = {} if replace_defaults else {j.name: j for j in default_jobs()}
    seen: set[str] = set()
    for position, raw in enumerate(raw_jobs):
        raw = _with_default_fields(raw, jobs)
        job = job_from_mapping(raw, position=position)
        if job.name in seen:
            raise JobConfigError(job.name, "name", "appears twice in the config file")
        seen.add(job.name)
        jobs[job.name] = job
    return SchedulerConfig(
        jobs=with_scheduled_symbols(tuple(jobs.values())),
        simulated_first_run_seconds=float(first_run),
    )


def _with_default_fields(raw: Any, jobs: dict[str, Job]) -> Any:
    """``{name = "x", enabled = false}`` switches default job x off without restating it."""
    if not isinstance(raw, Mapping) or set(raw) - {"name", "enabled"}:
        return raw
    for default in DEFAULT_JOB_MAPPINGS:
        if default["name"] == raw.get("name") and raw.get("name") in jobs:
            return {**default, **raw}
    return raw


def load_config(path: str | os.PathLike[str] | None = None) -> SchedulerConfig:
    """The built-in defaults, or the defaults merged with the TOML file at ``path``."""
    if path is None:
        return SchedulerConfig(jobs=with_scheduled_symbols(default_jobs()))
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise JobConfigError("*", "config_path", f"{os.fspath(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise JobConfigError(
            "*", "config_path", f"{os.fspath(path)!r} is not TOML: {exc}"
        ) from None
    return config_from_mapping(data)
