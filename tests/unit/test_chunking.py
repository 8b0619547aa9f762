"""load-history's chunking: contiguous, exact cover of the range, every chunk within IB's limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6ray import ib_limits
from v6ray.model import RequestType
from v6ray.parameters import normalize_parameters
from v6ray.scripts.chunking import chunk_range, chunk_spans, duration_text

END = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


def _check_cover(chunks, end, duration, bar_size):
    """Chunks are newest first, each ends where the previous began, and they add up."""
    total = ib_limits.parse_duration(duration).seconds
    cursor = end.replace(microsecond=0)
    for chunk_end, chunk_duration in chunks:
        assert datetime.fromisoformat(chunk_end) == cursor
        seconds = ib_limits.parse_duration(chunk_duration).seconds
        assert bar_seconds(bar_size) <= seconds <= ib_limits.max_duration_seconds(bar_size)
        cursor -= timedelta(seconds=seconds)
    assert cursor == end.replace(microsecond=0) - timedelta(seconds=total)


def bar_seconds(bar_size):
    return ib_limits.bar_seconds(bar_size)


def test_three_days_of_minute_bars_is_three_exact_one_day_windows():
    assert chunk_range(END, "3 D", "1 min") == [
        ("2026-11-27T21:00:00+00:00", "86400 S"),
        ("2026-11-26T21:00:00+00:00", "86400 S"),
        ("2026-11-25T21:00:00+00:00", "86400 S"),
    ]


def test_range_within_the_limit_is_one_request_as_given():
    # IB's own meaning then applies ("5 D" = five trading days), as if asked directly.
    assert chunk_range(END, "5 D", "1 hour") == [("2026-11-27T21:00:00+00:00", "5 D")]
    assert chunk_range(END, "2 Y", "1 day") == [("2026-11-27T21:00:00+00:00", "2 Y")]
    assert chunk_range(END, "1 D", "1 min") == [("2026-11-27T21:00:00+00:00", "1 D")]


def test_intraday_chunks_are_clock_windows_of_at_most_a_day():
    # 1 W of 2-minute bars (limit 2 D): seven one-day windows.
    chunks = chunk_range(END, "1 W", "2 mins")
    assert [d for _, d in chunks] == ["86400 S"] * 7
    assert chunks[-1][0] == "2026-11-21T21:00:00+00:00"
    # 5000 s of 1-second bars (limit 1800 S): 1800, 1800, 1400.
    assert [d for _, d in chunk_range(END, "5000 S", "1 secs")] == ["1800 S", "1800 S", "1400 S"]
    # A remainder is the oldest chunk.
    assert [d for _, d in chunk_range(END, "100000 S", "1 min")] == ["86400 S", "13600 S"]


def test_daily_bars_beyond_what_ib_keeps_are_refused():
    with pytest.raises(ValueError, match="20 Y"):
        chunk_range(END, "21 Y", "1 day")


def test_remainder_shorter_than_a_bar_borrows_from_the_previous_chunk():
    # 2-minute bars in one-day windows; 2 D + 60 s leaves 60 s < one 120 s bar.
    assert chunk_spans(172_860, 86_400, 120) == [86_400, 86_340, 120]
    chunks = chunk_range(END, "172860 S", "2 mins")
    assert [d for _, d in chunks] == ["86400 S", "86340 S", "120 S"]
    _check_cover(chunks, END, "172860 S", "2 mins")


def test_end_is_normalized_to_whole_seconds_utc():
    eastern = END.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert chunk_range(eastern + timedelta(microseconds=5), "1 D", "1 min")[0][0] == (
        "2026-11-27T21:00:00+00:00"
    )


def test_bad_input_raises():
    with pytest.raises(ValueError):
        chunk_range(END, "3 X", "1 min")
    with pytest.raises(ValueError):
        chunk_range(END, "3 D", "7 mins")
    with pytest.raises(ValueError):
        chunk_range(END, "30 S", "1 min")  # shorter than one bar
    with pytest.raises(ValueError):
        chunk_spans(30, 86_400, 60)
    with pytest.raises(ValueError):
        chunk_range(END.replace(tzinfo=None), "1 D", "1 min")
    with pytest.raises(ValueError):
        duration_text(0)
    with pytest.raises(ValueError):
        duration_text(86_401)


def test_every_chunk_is_a_valid_market_bars_request():
    for chunk_end, chunk_duration in chunk_range(END, "100000 S", "1 min"):
        params = normalize_parameters(
            RequestType.MARKET_BARS,
            "SPY",
            {"duration": chunk_duration, "bar_size": "1 min", "end": chunk_end},
        )
        assert params["end"] == chunk_end


@settings(max_examples=200, deadline=None)
@given(
    bar_size=st.sampled_from(sorted(ib_limits.BAR_SIZE_SECONDS)),
    count=st.integers(min_value=1, max_value=400),
    unit=st.sampled_from("SDWMY"),
    offset=st.integers(min_value=0, max_value=10**8),
)
def test_cover_is_exact_for_any_range(bar_size, count, unit, offset):
    duration = f"{count} {unit}"
    total = ib_limits.parse_duration(duration).seconds
    bar = ib_limits.bar_seconds(bar_size)
    longest = ib_limits.max_duration_seconds(bar_size)
    if total < bar or -(-total // min(longest, 86_400)) > 2000:
        return
    if total > longest and bar >= 86_400:
        with pytest.raises(ValueError):
            chunk_range(END, duration, bar_size)
        return
    end = END - timedelta(seconds=offset)
    chunks = chunk_range(end, duration, bar_size)
    if len(chunks) == 1:
        assert chunks[0][1] == duration  # one request: as given
    else:
        _check_cover(chunks, end, duration, bar_size)
