"""Split a long bar history into the requests IB serves reliably (pure).

The one rule of both splitters: the gateway's (one ``market_bars`` request, several IB
requests) and ``load-history``'s (one ``market_bars`` request per chunk). Fewer, larger
requests spend less of IB's pacing budget, so every chunk is as large as IB answers well
within a client's timeout (``ib_limits.RELIABLE_BARS``), and no chunk asks for a window
without trading: IB's only answer to that is "HMDS query returned no data".

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

from v6ray import ib_limits, markets
from v6ray.markets import NEW_YORK, Session, SessionKind

_DAY = 86_400
# At most how many sessions a duration unit holds, to estimate its bars.
_SESSIONS_PER_UNIT = {"D": 1, "W": 5, "M": 23, "Y": 253}
_SESSIONS_PER_YEAR = 252


@dataclass(frozen=True)
class Chunk:
    end: datetime  # UTC, whole seconds
    duration: str  # an IB duration string IB serves for the bar size


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
    parsed = ib_limits.parse_duration(duration)
    bar = ib_limits.bar_seconds(bar_size)
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    end = end.astimezone(UTC).replace(microsecond=0)
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


def _fits(parsed: ib_limits.Duration, bar_size: str, session_seconds: int) -> bool:
    """IB serves the duration, reliably, in one request."""
    if ib_limits.duration_problem(parsed, bar_size) is not None:
        return False
    if ib_limits.is_small_bar(bar_size):
        return True  # their hard limit is the reliable size
    if parsed.unit == "S":
        bars = -(-parsed.seconds // ib_limits.bar_seconds(bar_size))
    else:
        sessions = parsed.count * _SESSIONS_PER_UNIT[parsed.unit]
        bars = sessions * ib_limits.session_bars(bar_size, session_seconds)
    return bars <= ib_limits.RELIABLE_BARS


def _long_bar_duration(parsed: ib_limits.Duration, bar_size: str) -> str:
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
    bar = ib_limits.bar_seconds(bar_size)
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
    for span in chunk_spans(total, step, ib_limits.bar_seconds(bar_size)):
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
