"""Split a long bar history into IB-sized requests (pure).

``chunk_range(end, duration, bar_size)`` returns the requests, newest first:

- when IB serves the whole ``duration`` in one request, that one request, as given (IB's
  own meaning of the duration: "3 D" is three trading days);
- otherwise contiguous chunks covering exactly the ``duration`` seconds before ``end``
  (S = 1 s, D = 86 400 s, W = 7 D, M = 30 D, Y = 365 D, as ``v6ray.ib_limits`` counts them),
  each within ``MAX_DURATION_BY_BAR_SIZE[bar_size]``. Intraday chunks are written in
  seconds ("86400 S"), the one unit IB (and the simulator) reads as an exact clock window:
  IB reads "1 D" as "one trading session", so day-unit chunks ending on a weekend would
  overlap or leave holes. Daily and longer bars never need splitting (IB serves 20 years
  in one request); asking for more is an error.

Every chunk is at least one bar long, because IB (and ``v6ray.parameters``) refuse a
duration shorter than a bar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from v6ray import ib_limits

# IB accepts durations in seconds up to one day.
MAX_SECONDS_DURATION = 86_400


def duration_text(seconds: int) -> str:
    """Whole seconds, at most a day, as an IB duration in seconds ("86400 S")."""
    if not 0 < seconds <= MAX_SECONDS_DURATION:
        raise ValueError(f"a chunk must last 1..{MAX_SECONDS_DURATION} s, got {seconds} s")
    return f"{seconds} S"


def iso_utc(stamp: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00``, the form ``v6ray.parameters`` normalizes ``end`` to."""
    if stamp.tzinfo is None:
        raise ValueError("chunk ends must be timezone-aware")
    return stamp.astimezone(UTC).replace(microsecond=0).isoformat()


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


def chunk_range(end: datetime, duration: str, bar_size: str) -> list[tuple[str, str]]:
    """[(chunk_end ISO UTC, chunk_duration)] newest first: ``duration`` as given when one
    request serves it, else contiguous chunks covering exactly ``duration`` before ``end``,
    each within IB's longest duration for ``bar_size``."""
    total = ib_limits.parse_duration(duration).seconds
    bar = ib_limits.bar_seconds(bar_size)  # first: it names an unknown bar size clearly
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    end = end.astimezone(UTC).replace(microsecond=0)
    if total < bar:
        raise ValueError(f"{duration} is shorter than one {bar_size} bar")
    if total <= ib_limits.max_duration_seconds(bar_size):
        return [(iso_utc(end), str(ib_limits.parse_duration(duration)))]
    if bar >= MAX_SECONDS_DURATION:
        limit = ib_limits.MAX_DURATION_BY_BAR_SIZE[bar_size]
        raise ValueError(f"{duration} of {bar_size} bars is more than IB keeps ({limit})")
    step = min(ib_limits.max_duration_seconds(bar_size), MAX_SECONDS_DURATION)
    out = []
    covered = 0
    for span in chunk_spans(total, step, bar):
        out.append((iso_utc(end - timedelta(seconds=covered)), duration_text(span)))
        covered += span
    return out
