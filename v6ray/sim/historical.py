"""reqHistoricalData and reqHeadTimeStamp: validation, IB's limits, bar grids, answers.

Checks run in IB's order of complaint: unknown contract (200), invalid bar size or
request (321, also "N S" over a day and "N D" over 365), duration longer than the bar
size allows (162 "Time length exceed max.", a user error, not pacing; only seconds bars
and daily bars have such a limit, see ``ib_limits``), then the limits: 50 open requests
(322) and, for bars of 30 s or less, the pacing rules (162 "Pacing violation"). A large
request is not refused: it is answered slowly, as IB does (``answer_latency``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from v6ray.pacing import ib_limits
from v6ray.sim import messages as m
from v6ray.sim import protocol as p
from v6ray.sim.calendar import (
    IB_TIMEZONE_NAME,
    NEW_YORK,
    Session,
    intraday_bars,
    sessions_before,
    sessions_between,
)
from v6ray.sim.config import SimConfig
from v6ray.sim.limits import HistoricalQuery
from v6ray.sim.market import Bar, expiry_epoch
from v6ray.sim.prices import EPOCH
from v6ray.sim.reference import query_symbol, resolve_one
from v6ray.sim.session import ClientSession
from v6ray.sim.universe import Instrument

ERR_INVALID_END = 10314  # "End Date/Time: The date, time, or time-zone entered is invalid."
HMDS = "Historical Market Data Service error message:"
DATA_START = datetime(2000, 1, 3, tzinfo=UTC)  # the walks start here
_INVALID = "Error validating request.-'bP' : cause - "
# (code, text, user-error counter) per refusal; the 321 texts follow the reports cited in
# ib_limits (only "greater than 86400 seconds" is quoted there for the first).
DURATION_ERRORS = {
    ib_limits.DurationProblem.TOO_LONG: (
        ib_limits.ERR_HIST_PACING, f"{HMDS}Time length exceed max.", "hist_duration_exceeded"),
    ib_limits.DurationProblem.SECONDS_OVER_A_DAY: (
        321, f"{_INVALID}Historical data requests for durations greater than 86400 seconds "
        "must be made in days.", "hist_invalid_duration"),
    ib_limits.DurationProblem.DAYS_OVER_A_YEAR: (
        321, f"{_INVALID}Historical data requests for durations longer than 365 days must be "
        "made in years.", "hist_invalid_duration"),
}
_LARGE_GRID = 100_000  # clock bars in a request beyond which its grid is laid out off the loop
_END_RE = re.compile(r"^(\d{8})(?:([ -])(\d{2}:\d{2}:\d{2}))?(?:\s+(\S+))?$")


def parse_end(text: str, now: float) -> int:
    """IB's endDateTime: "" (now), "yyyymmdd hh:mm:ss [tz]", "yyyymmdd-hh:mm:ss" (UTC)."""
    text = text.strip()
    if not text:
        return int(now)
    match = _END_RE.match(text)
    if not match:
        raise ValueError(text)
    day, sep, clock, zone = match.groups()
    if sep == "-":
        tz = ZoneInfo("UTC")
    else:
        try:
            tz = ZoneInfo(zone) if zone else NEW_YORK
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(text) from None
    moment = datetime.strptime(f"{day} {clock or '23:59:59'}", "%Y%m%d %H:%M:%S")
    return int(moment.replace(tzinfo=tz).timestamp())


def _months_back(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    return date(year, month + 1, min(day.day, 28))


def data_range(instrument: Instrument) -> tuple[int, int]:
    """[first, last) epoch seconds with data: futures list ~2 years, options ~1 year."""
    if instrument.sec_type in ("FUT", "CONTFUT", "OPT"):
        expiry = expiry_epoch(instrument)
        listed = 730 if instrument.sec_type != "OPT" else 365
        return max(int(DATA_START.timestamp()), expiry - listed * 86_400), expiry
    return int(DATA_START.timestamp()), 2**40


def _sessions(instrument: Instrument, use_rth: bool, duration: ib_limits.Duration,
              end: int) -> list[Session]:
    kind = instrument.session_kind
    end_day = datetime.fromtimestamp(end, NEW_YORK).date()
    if duration.unit == "D":
        return sessions_before(kind, use_rth, end, duration.count)
    if duration.unit == "S":
        first = datetime.fromtimestamp(end - duration.seconds, NEW_YORK).date()
        found = sessions_between(kind, use_rth, first, end_day + timedelta(days=1))
        return [s for s in found if s.end > end - duration.seconds and s.start < end]
    start = {
        "W": lambda: end_day - timedelta(days=7 * duration.count),
        "M": lambda: _months_back(end_day, duration.count),
        "Y": lambda: _months_back(end_day, 12 * duration.count),
    }[duration.unit]()
    found = sessions_between(kind, use_rth, start + timedelta(days=1), end_day + timedelta(days=1))
    return [s for s in found if s.start < end]


def bar_intervals(instrument: Instrument, bar_size: str, duration: ib_limits.Duration,
                  end: int, use_rth: bool) -> list[tuple[str, int, int]]:
    """(label kind, start, end) of every bar the request covers, oldest first."""
    seconds = ib_limits.bar_seconds(bar_size)
    sessions = _sessions(instrument, use_rth, duration, end)
    first_ok, last_ok = data_range(instrument)
    if seconds < 86_400:
        window_start = end - duration.seconds if duration.unit == "S" else 0
        bars = [("time", s, e) for session in sessions for s, e in intraday_bars(session, seconds)
                if window_start <= s < end]
    elif bar_size == "1 day":
        bars = [("date", s.start, s.end) for s in sessions]
    else:
        # Weekly and monthly bars always span their whole week or month, so a bar has
        # the same values whichever window asked for it.
        def key(d: date) -> tuple[int, int]:
            return d.isocalendar()[:2] if bar_size == "1 week" else (d.year, d.month)

        bars = []
        for group in dict.fromkeys(key(s.trade_date) for s in sessions):
            day = next(s.trade_date for s in sessions if key(s.trade_date) == group)
            lo = day - timedelta(days=day.weekday()) if bar_size == "1 week" else day.replace(day=1)
            span = sessions_between(instrument.session_kind, use_rth, lo, lo + timedelta(days=31))
            full = [s for s in span if key(s.trade_date) == group]
            bars.append(("date", full[0].start, full[-1].end))
    return [(k, s, e) for k, s, e in bars if s >= first_ok and s < last_ok]


def _format_rows(intervals: list[tuple[str, int, int]], bars: list[Bar],
                 format_date: int) -> list[str]:
    """Each bar as its 8 protocol fields, already NUL-joined (this is the hot path)."""
    offsets: dict[int, int] = {}  # UTC offset of New York per UTC day: DST-safe, cheap
    rows = []
    for (kind, _, _), bar in zip(intervals, bars, strict=True):
        if kind == "date":
            trade_date = datetime.fromtimestamp(bar.start, NEW_YORK).date() + _label_shift(bar)
            label = f"{trade_date:%Y%m%d}"
        elif format_date == 2:
            label = str(bar.start)
        else:
            day = bar.start // 86_400
            if day not in offsets:
                offsets[day] = int(datetime.fromtimestamp(bar.start, NEW_YORK).utcoffset()
                                   .total_seconds())
            local = datetime.fromtimestamp(bar.start + offsets[day], UTC)
            label = f"{local:%Y%m%d %H:%M:%S} {IB_TIMEZONE_NAME}"
        volume = int(bar.volume) if bar.volume >= 0 else -1
        rows.append(f"{label}\0{bar.open!r}\0{bar.high!r}\0{bar.low!r}\0{bar.close!r}\0"
                    f"{volume}\0{bar.wap!r}\0{bar.count}")
    return rows


def _label_shift(bar: Bar) -> timedelta:
    # A futures session opening at 18:00 the evening before is named by its trade date.
    evening = datetime.fromtimestamp(bar.start, NEW_YORK).hour >= 17
    return timedelta(days=1) if evening else timedelta(0)


def _contract_key(instrument: Instrument) -> str:
    return f"{instrument.con_id}"


def req_historical_data(session: ClientSession, fields: list[str]) -> Coroutine[None, None, None]:
    # The pacing windows are checked at the request's arrival, as IB does, not whenever
    # this coroutine first runs: the stamp is taken now, while the message is dispatched.
    return _historical_data(session, fields, session.received_at)


async def _historical_data(session: ClientSession, fields: list[str], received_at: float) -> None:
    r = p.FieldReader(fields, start=1)
    req_id = r.int()
    q = r.contract()
    r.skip()  # includeExpired
    end_text, bar_size, duration_text = r.text(), r.text(), r.text()
    use_rth, what, format_date = r.bool(), r.text().upper(), r.int()
    sim = session.sim
    if session.take_injected(req_id, "historical", query_symbol(q)):
        return
    instrument = resolve_one(session, req_id, q)
    if instrument is None:
        return
    if bar_size not in ib_limits.BAR_SIZE_SECONDS:
        session.send_error(req_id, 321, "Error validating request.-'bP' : cause - Historical data "
                           "bar size setting is invalid.", user_error="hist_invalid_bar_size")
        return
    if what not in ib_limits.WHAT_TO_SHOW:
        session.send_error(req_id, 321, f"Error validating request.-'bP' : cause - Historical data "
                           f"whatToShow {what!r} is invalid.", user_error="hist_invalid_what")
        return
    try:
        duration = ib_limits.parse_duration(duration_text)
    except ValueError:
        session.send_error(req_id, 321, "Error validating request.-'bP' : cause - Historical data "
                           "duration format is invalid.", user_error="hist_invalid_duration")
        return
    problem = ib_limits.duration_problem(duration, bar_size)
    if problem is not None:
        code, text, counter = DURATION_ERRORS[problem]
        session.send_error(req_id, code, text, user_error=counter)
        return
    try:
        end = parse_end(end_text, time.time())
    except ValueError:
        session.send_error(req_id, ERR_INVALID_END, "End Date/Time: The date, time, or time-zone "
                           "entered is invalid.", user_error="hist_invalid_end")
        return
    if sim.config.limits:
        query = HistoricalQuery(_contract_key(instrument), q.exchange, what, bar_size,
                                duration_text, end_text, use_rth, ib_limits.is_small_bar(bar_size),
                                ib_limits.historical_weight(what))
        broken = sim.pacing.check(query, received_at)
        if broken == "open":
            session.send_error(req_id, ib_limits.ERR_HIST_MAX_OPEN,
                               "Error processing request:-'bP' : cause - Only "
                               f"{sim.config.hist_max_open} simultaneous API historical data "
                               "requests allowed.", violation=True)
            return
        if broken:
            session.send_error(req_id, ib_limits.ERR_HIST_PACING,
                               f"{HMDS}Pacing violation: {broken}", violation=True)
            return
    sim.pacing.opened()
    session.historical[req_id] = asyncio.current_task()  # type: ignore[assignment]
    try:
        await _answer(session, req_id, instrument, bar_size, duration, end, use_rth, what,
                      format_date)
    finally:
        sim.pacing.closed()
        session.historical.pop(req_id, None)


def answer_latency(config: SimConfig, bar_size: str, bars: int) -> float:
    """Unscaled seconds until IB answers ``bars`` bars: a base latency, then IB's slow
    answers for large intraday requests (``ib_limits.slow_answer_seconds``)."""
    return (config.historical_latency + config.historical_per_bar_latency * bars
            + ib_limits.slow_answer_seconds(bar_size, bars))


async def _answer(session, req_id, instrument, bar_size, duration, end, use_rth, what,
                  format_date) -> None:
    if duration.seconds // ib_limits.bar_seconds(bar_size) > _LARGE_GRID:
        # Laying out years of minute bars takes a while: not on the loop that reads messages.
        intervals = await asyncio.to_thread(bar_intervals, instrument, bar_size, duration, end,
                                            use_rth)
    else:
        intervals = bar_intervals(instrument, bar_size, duration, end, use_rth)
    # Wait first: a client that gives up on a huge request (and cancels it) does not make
    # the simulator compute its bars.
    if not await session.wait_for_answer(answer_latency(session.sim.config, bar_size,
                                                        len(intervals))):
        return
    bars = await asyncio.to_thread(session.sim.market.bars, instrument,
                                   [(s, e) for _, s, e in intervals], what)
    if not bars:
        session.send_error(req_id, ib_limits.ERR_HIST_PACING,
                           f"{HMDS}HMDS query returned no data: "
                           f"{instrument.local_symbol}@{instrument.exchange} {what}",
                           user_error="hist_no_data")
        return
    rows = _format_rows(intervals, bars, format_date)
    start_text = datetime.fromtimestamp(intervals[0][1], UTC).strftime("%Y%m%d-%H:%M:%S")
    end_text = datetime.fromtimestamp(end, UTC).strftime("%Y%m%d-%H:%M:%S")
    session.send(m.historical_data(req_id, start_text, end_text, rows))
    session.sim.counters.requests_served["historical"] += 1


def cancel_historical_data(session: ClientSession, fields: list[str]) -> None:
    req_id = int(fields[2])
    task = session.historical.pop(req_id, None)
    if task is not None:
        task.cancel()
        session.send_error(req_id, ib_limits.ERR_HIST_PACING,
                           f"{HMDS}API historical data query cancelled: {req_id}")


async def req_head_timestamp(session: ClientSession, fields: list[str]) -> None:
    r = p.FieldReader(fields, start=1)
    req_id = r.int()
    q = r.contract()
    r.skip(3)  # includeExpired, useRTH, whatToShow
    format_date = r.int()
    if session.take_injected(req_id, "head_timestamp", query_symbol(q)):
        return
    instrument = resolve_one(session, req_id, q)
    if instrument is None:
        return
    if not await session.wait_for_answer(session.sim.config.contract_details_latency):
        return
    first = max(data_range(instrument)[0], EPOCH)
    opening = sessions_between(instrument.session_kind, True,
                               datetime.fromtimestamp(first, NEW_YORK).date(),
                               datetime.fromtimestamp(first, NEW_YORK).date() + timedelta(days=7))
    head = opening[0].start
    text = str(head) if format_date == 2 else datetime.fromtimestamp(head, UTC).strftime(
        "%Y%m%d-%H:%M:%S")
    session.send(m.head_timestamp(req_id, text))
    session.sim.counters.requests_served["head_timestamp"] += 1


HANDLERS = {
    p.REQ_HISTORICAL_DATA: req_historical_data,
    p.CANCEL_HISTORICAL_DATA: cancel_historical_data,
    p.REQ_HEAD_TIMESTAMP: req_head_timestamp,
}
