"""Split a long bar history into IB-sized requests (pure).

``chunk_range(end, duration, bar_size)`` covers exactly the ``duration`` seconds before
``end`` (IB's units: S = 1 s, D = 86 400 s, W = 7 D, M = 30 D, Y = 365 D, as
``v6ray.ib_limits`` counts them) with contiguous chunks of at most
``MAX_DURATION_BY_BAR_SIZE[bar_size]`` each, newest first. Every chunk is at least one
bar long, because IB (and ``v6ray.parameters``) refuse a duration shorter than a bar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from v6ray import ib_limits

# Units a chunk duration is written in, largest first; a chunk uses the largest unit that
# divides it exactly, so the chunks add up to the requested range to the second.
_UNITS = (("Y", 365 * 86_400), ("M", 30 * 86_400), ("W", 7 * 86_400), ("D", 86_400), ("S", 1))


def duration_text(seconds: int) -> str:
    """Whole seconds as an exact IB duration string ("1 W", "2 D", "5400 S")."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    raise AssertionError("unreachable: 'S' divides everything")


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
    """[(chunk_end ISO UTC, chunk_duration)] newest first, contiguous, covering exactly
    ``duration`` before ``end``; each within IB's longest duration for ``bar_size``."""
    total = ib_limits.parse_duration(duration).seconds
    bar = ib_limits.bar_seconds(bar_size)  # first: it names an unknown bar size clearly
    longest = ib_limits.max_duration_seconds(bar_size)
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    end = end.astimezone(UTC).replace(microsecond=0)
    out = []
    covered = 0
    for span in chunk_spans(total, longest, bar):
        out.append((iso_utc(end - timedelta(seconds=covered)), duration_text(span)))
        covered += span
    return out
