"""A bar request's time range: IB durations, bar sizes, end times, and how a range is split
into the requests IB serves reliably (pure).

Every part of v6ray that reads or splits a ``market_bars`` range asks this module:
``parameters`` (what a request may ask), the gateway (its chunks, and their cost to the
pacer), and ``load-history`` (one request per chunk).

- ``parse_duration``/``Duration`` and ``bar_seconds`` read IB's vocabulary; they are defined in
  ``ib_limits`` beside the limits that use them, and callers outside it take them from here.
  ``normalize_duration`` and ``normalize_bar_size`` give the one form parameters store.
- ``normalize_end``: a request's ``end`` (ISO text or an aware datetime) in UTC, whole seconds.
- ``chunk_count``: about how many IB requests a range takes, without a calendar.
- ``plan``: the split itself; ``request_chunks`` (the gateway's, weekdays) and
  ``backfill_chunks`` (load-history's, exchange calendars) apply it.

The split. Fewer, larger requests spend less of IB's pacing budget, so every chunk is as
large as IB answers well within a client's timeout (``ib_limits.RELIABLE_BARS``), and no chunk
asks for a window without trading: IB's only answer to that is "HMDS query returned no data".

``plan(end, duration, bar_size, ...)`` returns ``Chunk(end, duration)``, newest first:

- One chunk, the duration as given, when IB serves it within the reliable size: IB's own
  meaning of the duration then applies ("3 D" is three sessions). A clock window ("N S")
  without a session in it is no request at all.
- Minute-to-hours bars: runs of whole sessions, as many as fit the reliable size, each
  asked as "k D" ending at the close of its newest session (the newest run at ``end`` if
  that comes first). IB counts "D" in sessions, so a chunk is exactly its sessions, and
  nothing between two sessions (a weekend, a holiday, the night) is asked for.
- Seconds bars: clock windows ("N S") inside the sessions, at most 2000 bars each (IB's
  hard limit for them is also the reliable size).
- Daily and longer bars: one request (in years beyond IB's 365-day limit on "D"); more
  than IB keeps (20 years) is an error.
- Hours not modelled (``kind=None``, e.g. forex): contiguous clock windows of at most a
  day ("86400 S"), which cover any range exactly whatever the sessions are.

A "D" duration selects the last N sessions before ``end``; the other units select the
clock window before ``end`` (S = 1 s, W = 7 D, M = 30 D, Y = 365 D, as ``ib_limits``
counts them) and every session overlapping it, whole. With ``holidays=False`` every weekday
counts as a session: IB then skips a holiday and reaches one session further back, so
chunks overlap (bars merge by key) and never leave a hole; a "N D" range is then N weekdays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from v6ray.pacing import ib_limits
from v6ray.pacing.ib_limits import Duration, bar_seconds, parse_duration
from v6ray.requests import markets
from v6ray.requests.markets import NEW_YORK, Session, SessionKind
from v6ray.requests.payload import shown

__all__ = [
    "Chunk", "Duration", "backfill_chunks", "bar_seconds", "chunk_count", "chunk_spans",
    "normalize_bar_size", "normalize_duration", "normalize_end", "parse_duration", "plan",
    "request_chunks",
]

_DAY = 86_400
# At most how many sessions a duration unit holds, to estimate its bars.
_SESSIONS_PER_UNIT = {"D": 1, "W": 5, "M": 23, "Y": 253}
_SESSIONS_PER_YEAR = 252
# Spellings people write for IB's bar sizes; IB itself knows only the keys' values.
_BAR_SIZE_ALIASES = {"1 sec": "1 secs", "1 hr": "1 hour", "1 hours": "1 hour", "1 mins": "1 min"}
_END_EXAMPLE = "2026-11-27T21:00:00Z"


# --------------------------------------------------------------------------- parsing


def normalize_duration(text: str) -> str:
    """``text`` as IB's duration (``" 5  D"`` → ``"5 D"``); ``ValueError`` if it is none."""
    return str(parse_duration(text))


def normalize_bar_size(text: str) -> str:
    """``text`` as one of IB's bar sizes (spacing, case and a few aliases forgiven)."""
    size = " ".join(text.split()).lower()
    size = _BAR_SIZE_ALIASES.get(size, size)
    if size not in ib_limits.BAR_SIZE_SECONDS:
        known = ", ".join(ib_limits.BAR_SIZE_SECONDS)
        raise ValueError(f"{shown(text)} is not one of IB's bar sizes ({known})")
    return size


def normalize_end(value: str | datetime | None, now: datetime | None = None) -> datetime:
    """A request's end in UTC, whole seconds: how chunks end, and (``.isoformat()``,
    ``YYYY-MM-DDTHH:MM:SS+00:00``) how ``parameters`` stores it, so equal ends compare equal.

    ``value``: ISO text (``Z`` or an offset; none means UTC) or a timezone-aware datetime;
    empty or None means ``now``, and is an error without one. Raises ``ValueError``.
    """
    if value is None or value == "":
        if now is None:
            raise ValueError(f"must be an ISO datetime such as {_END_EXAMPLE}, got {shown(value)}")
        value = now
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
            # An offset can carry a stamp past datetime's range (year 1 at +01:00).
            return stamp.astimezone(UTC).replace(microsecond=0)
        except (ValueError, OverflowError):
            raise ValueError(
                f"must be an ISO datetime such as {_END_EXAMPLE}, got {shown(value)}"
            ) from None
    if value.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    return value.astimezone(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- counting


def chunk_count(duration: str, bar_size: str, use_rth: bool = True) -> int:
    """About how many IB requests ``duration`` of ``bar_size`` bars takes (at least 1): its
    clock span over the clock span of one reliable request (``ib_limits.max_duration_seconds``).

    An estimate that needs no calendar and no end, for the pacer's cost of a request and the
    submit-time limit on its chunks; ``plan`` counts sessions. ``use_rth`` counts: outside
    regular hours a session holds up to 24 h of bars, so fewer sessions fit one request and
    the gateway sends more (1-min bars: one session per request instead of five).
    """
    total = parse_duration(duration).seconds
    return max(1, -(-total // ib_limits.max_duration_seconds(bar_size, use_rth)))


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Chunk:
    end: datetime  # UTC, whole seconds
    duration: str  # an IB duration string IB serves for the bar size


def request_chunks(end: datetime, duration: str, bar_size: str, *, use_rth: bool = True,
                   sec_type: str = "STK") -> list[Chunk]:
    """The gateway's split of one ``market_bars`` request into IB requests, newest first.

    Weekdays stand in for trading days: loading an exchange calendar takes seconds, and a
    holiday counted as a session only makes two chunks overlap. A window with no session
    of ours is still asked of IB (plainly, as contiguous clock windows): for a request a
    user made, IB's hours are the truth (and its "no data" the answer), not our model.
    """
    chunks = plan(end, duration, bar_size, use_rth=use_rth,
                  kind=markets.session_kind(sec_type), holidays=False)
    return chunks or plan(end, duration, bar_size, use_rth=use_rth, kind=None)


def backfill_chunks(end: datetime, duration: str, bar_size: str, *, use_rth: bool = True,
                    sec_type: str = "STK") -> list[Chunk]:
    """load-history's split of a range, one ``market_bars`` request per chunk, newest first.

    The exchange calendar (XNYS, or CMES for futures) knows weekends, holidays and early
    closes, so no chunk asks for a window without trading, and a range without any trading
    is no chunk at all (a backfill has nothing to ask IB there).
    """
    return plan(end, duration, bar_size, use_rth=use_rth, kind=markets.session_kind(sec_type))


def plan(
    end: datetime,
    duration: str,
    bar_size: str,
    *,
    use_rth: bool = True,
    kind: SessionKind | None = SessionKind.EQUITY,
    holidays: bool = True,
) -> list[Chunk]:
    """The requests that fetch ``duration`` of ``bar_size`` bars up to ``end``, newest first.

    ``kind``: whose trading hours (None: not modelled); ``holidays``: use the exchange
    calendar (False: every weekday trades, no calendar is loaded). Raises ``ValueError``
    for a bad duration or bar size, a naive ``end``, or a range shorter than one bar.
    """
    parsed = parse_duration(duration)
    bar = bar_seconds(bar_size)
    end = normalize_end(end)
    if parsed.seconds < bar:
        raise ValueError(f"{duration} is shorter than one {bar_size} bar")
    if bar >= _DAY:
        return [Chunk(end, _long_bar_duration(parsed, bar_size))]
    stop = int(end.timestamp())
    if kind is None:
        if _fits(parsed, bar_size, ib_limits.FULL_DAY_SESSION_SECONDS):
            return [Chunk(end, str(parsed))]
        return _clock_windows(end, parsed.seconds, bar_size)
    if parsed.unit == "D":
        sessions = _last_sessions(kind, use_rth, holidays, stop, parsed.count)
        start = sessions[-1].start
    else:
        start = stop - parsed.seconds
        sessions = _overlapping(kind, use_rth, holidays, start, stop)
    if not sessions:
        return []
    if _fits(parsed, bar_size, markets.session_seconds(kind, use_rth)):
        return [Chunk(end, str(parsed))]
    if ib_limits.is_small_bar(bar_size):
        return _second_windows(sessions, start, stop, bar_size)
    return _session_runs(sessions, stop, bar_size)


def _fits(parsed: Duration, bar_size: str, session_seconds: int) -> bool:
    """IB serves the duration, reliably, in one request."""
    if ib_limits.duration_problem(parsed, bar_size) is not None:
        return False
    if ib_limits.is_small_bar(bar_size):
        return True  # their hard limit is the reliable size
    if parsed.unit == "S":
        bars = -(-parsed.seconds // bar_seconds(bar_size))
    else:
        sessions = parsed.count * _SESSIONS_PER_UNIT[parsed.unit]
        bars = sessions * ib_limits.session_bars(bar_size, session_seconds)
    return bars <= ib_limits.RELIABLE_BARS


def _long_bar_duration(parsed: Duration, bar_size: str) -> str:
    """Daily and longer bars in one request: as given, or in the unit IB wants."""
    text = str(parsed)
    problem = ib_limits.duration_problem(parsed, bar_size)
    if problem is ib_limits.DurationProblem.SECONDS_OVER_A_DAY:
        days = -(-parsed.seconds // _DAY)
        text = f"{days} D" if days <= ib_limits.MAX_DAYS_DURATION else f"{-(-days // 365)} Y"
    elif problem is ib_limits.DurationProblem.DAYS_OVER_A_YEAR:
        text = f"{-(-parsed.count // _SESSIONS_PER_YEAR)} Y"  # "D" counts sessions
    if ib_limits.duration_problem(text, bar_size) is not None:
        limit = ib_limits.LONG_BAR_MAX_SECONDS // (365 * _DAY)
        raise ValueError(f"{parsed} of {bar_size} bars is more than IB keeps ({limit} Y)")
    return text


def _session_runs(sessions: Sequence[Session], stop: int, bar_size: str) -> list[Chunk]:
    """Consecutive sessions (newest first) grouped into the largest reliable "k D" requests."""
    runs: list[list[Session]] = []
    bars = 0
    for session in sessions:
        held = ib_limits.session_bars(bar_size, session.end - session.start)
        if not runs or bars + held > ib_limits.RELIABLE_BARS or (
            len(runs[-1]) == ib_limits.MAX_DAYS_DURATION
        ):
            runs.append([])
            bars = 0
        runs[-1].append(session)
        bars += held
    return [Chunk(_utc(min(stop, run[0].end)), f"{len(run)} D") for run in runs]


def _second_windows(sessions: Sequence[Session], start: int, stop: int,
                    bar_size: str) -> list[Chunk]:
    """Clock windows ("N S") over the trading part of [start, stop), newest first."""
    longest = ib_limits.chunk_seconds(bar_size)
    bar = bar_seconds(bar_size)
    out = []
    for session in sessions:
        top, bottom = min(session.end, stop), max(session.start, start)
        while top > bottom:
            # The oldest window is at least one bar long (IB refuses less); it may then
            # reach a little before ``start``.
            span = max(min(longest, top - bottom), bar)
            out.append(Chunk(_utc(top), f"{span} S"))
            top -= span
    return out


def _clock_windows(end: datetime, total: int, bar_size: str) -> list[Chunk]:
    step = min(ib_limits.chunk_seconds(bar_size), ib_limits.MAX_SECONDS_DURATION)
    out = []
    covered = 0
    for span in chunk_spans(total, step, bar_seconds(bar_size)):
        out.append(Chunk(end - timedelta(seconds=covered), f"{span} S"))
        covered += span
    return out


def chunk_spans(total: int, longest: int, bar: int) -> list[int]:
    """Chunk lengths in seconds, newest first: full ``longest`` chunks, then the remainder.

    A remainder shorter than one bar is not a valid request: it borrows from the chunk
    before it so that the oldest chunk is exactly one bar (total is unchanged).
    """
    if total <= 0 or longest <= 0 or bar <= 0:
        raise ValueError("total, longest and bar must be positive")
    if total < bar:
        raise ValueError(f"{total} s is shorter than one {bar} s bar")
    spans = [longest] * (total // longest)
    remainder = total % longest
    if remainder:
        if remainder >= bar or not spans:
            spans.append(remainder)
        else:
            spans[-1] = longest + remainder - bar
            spans.append(bar)
    return spans


def _overlapping(kind: SessionKind, use_rth: bool, holidays: bool, start: int,
                 stop: int) -> list[Session]:
    """Sessions with any part in [start, stop), newest first."""
    # A futures session opens the evening before its trade date.
    first, last = _local_date(start), _local_date(stop) + timedelta(days=1)
    found = markets.sessions_between(kind, use_rth, first, last, holidays=holidays)
    return [s for s in reversed(found) if s.end > start and s.start < stop]


def _last_sessions(kind: SessionKind, use_rth: bool, holidays: bool, stop: int,
                   count: int) -> list[Session]:
    """The last ``count`` sessions that started before ``stop``, newest first."""
    day = _local_date(stop) + timedelta(days=1)
    out: list[Session] = []
    while len(out) < count:
        session = markets.session_on(kind, use_rth, day, holidays=holidays)
        if session and session.start < stop:
            out.append(session)
        day -= timedelta(days=1)
    return out


def _local_date(stamp: int) -> date:
    return datetime.fromtimestamp(stamp, NEW_YORK).date()


def _utc(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)
