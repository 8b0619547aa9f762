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


def test_three_days_of_minute_bars_is_three_one_day_chunks():
    assert chunk_range(END, "3 D", "1 min") == [
        ("2026-11-27T21:00:00+00:00", "1 D"),
        ("2026-11-26T21:00:00+00:00", "1 D"),
        ("2026-11-25T21:00:00+00:00", "1 D"),
    ]


def test_range_within_the_limit_is_one_chunk_as_given():
    assert chunk_range(END, "5 D", "1 hour") == [("2026-11-27T21:00:00+00:00", "5 D")]
    assert chunk_range(END, "2 Y", "1 day") == [("2026-11-27T21:00:00+00:00", "2 Y")]


def test_remainder_becomes_the_oldest_chunk_in_an_exact_unit():
    # 1 W of 2-minute bars (limit 2 D): 2 D, 2 D, 2 D, then the 1 D left over.
    chunks = chunk_range(END, "1 W", "2 mins")
    assert [d for _, d in chunks] == ["2 D", "2 D", "2 D", "1 D"]
    assert chunks[-1][0] == "2026-11-21T21:00:00+00:00"
    # 45 D of hourly bars (limit 1 M = 30 D) -> 1 M then 15 D.
    assert [d for _, d in chunk_range(END, "45 D", "1 hour")] == ["1 M", "15 D"]
    # 5000 s of 1-second bars (limit 1800 S): 1800, 1800, 1400.
    assert [d for _, d in chunk_range(END, "5000 S", "1 secs")] == ["1800 S", "1800 S", "1400 S"]


def test_remainder_shorter_than_a_bar_borrows_from_the_previous_chunk():
    # 2-minute bars, limit 2 D = 172800 s; total 2 D + 60 s leaves 60 s < one 120 s bar.
    assert chunk_spans(172_860, 172_800, 120) == [172_740, 120]
    chunks = chunk_range(END, "172860 S", "2 mins")
    assert [d for _, d in chunks] == ["172740 S", "120 S"]
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
        chunk_range(END.replace(tzinfo=None), "1 D", "1 min")
    with pytest.raises(ValueError):
        duration_text(0)


def test_every_chunk_is_a_valid_market_bars_request():
    for chunk_end, chunk_duration in chunk_range(END, "1 W", "2 mins"):
        params = normalize_parameters(
            RequestType.MARKET_BARS,
            "SPY",
            {"duration": chunk_duration, "bar_size": "2 mins", "end": chunk_end},
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
    if total < bar or -(-total // longest) > 2000:
        return
    end = END - timedelta(seconds=offset)
    _check_cover(chunk_range(end, duration, bar_size), end, duration, bar_size)
