"""``v6ray.requests.durations``: durations, bar sizes and end times read one way, the chunk
count, and the bar chunker shared by load-history and the gateway: requests as large as IB
serves reliably, no window without trading, and together they cover the range.

"What IB returns" for a chunk is read the simulator's way, which is IB's: "k D" is the last k
sessions that started before the end (bars before the end), "N S" the clock window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v6ray.errors import InvalidRequest
from v6ray.pacing import ib_limits
from v6ray.requests import durations, markets
from v6ray.requests.durations import Chunk, backfill_chunks, plan, request_chunks
from v6ray.requests.markets import NEW_YORK, SessionKind
from v6ray.requests.model import RequestType
from v6ray.requests.registry import spec_for
from v6ray.sim.calendar import sessions_before


def bar_parameters(given: dict, now: datetime | None = None) -> dict:
    """A market_bars request's parameters as the queue stores them."""
    return spec_for(RequestType.MARKET_BARS).normalize(given, now or datetime.now(UTC))


# Friday 2025-03-07 16:00 ET, a regular close.
END = datetime(2025, 3, 7, 21, 0, tzinfo=UTC)
KINDS = {"STK": SessionKind.EQUITY, "IND": SessionKind.INDEX, "CONTFUT": SessionKind.FUTURE}


def _ts(stamp: datetime) -> int:
    return int(stamp.timestamp())


def ib_answer(chunk: Chunk, kind: SessionKind, use_rth: bool) -> list[tuple[int, int]]:
    """The trading intervals IB (and the simulator) return for one chunk."""
    end = _ts(chunk.end)
    parsed = ib_limits.parse_duration(chunk.duration)
    if parsed.unit == "D":
        found = sessions_before(kind, use_rth, end, parsed.count)
        return [(s.start, min(s.end, end)) for s in found]
    return trading(kind, use_rth, end - parsed.seconds, end)


def trading(kind: SessionKind, use_rth: bool, start: int, stop: int) -> list[tuple[int, int]]:
    day = datetime.fromtimestamp(start, NEW_YORK).date() - timedelta(days=1)
    last = datetime.fromtimestamp(stop, NEW_YORK).date() + timedelta(days=1)
    return [(max(s.start, start), min(s.end, stop))
            for s in markets.sessions_between(kind, use_rth, day, last)
            if s.end > start and s.start < stop]


def merged(intervals):
    out = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [tuple(i) for i in out]


def uncovered(wanted, got):
    """Parts of ``wanted`` no interval of ``got`` covers."""
    holes = []
    cover = merged(got)
    for lo, hi in merged(wanted):
        cursor = lo
        for c_lo, c_hi in cover:
            if c_hi <= cursor or c_lo >= hi:
                continue
            if c_lo > cursor:
                holes.append((cursor, c_lo))
            cursor = max(cursor, c_hi)
        if cursor < hi:
            holes.append((cursor, hi))
    return holes


def wanted_trading(duration: str, end: datetime, kind: SessionKind, use_rth: bool,
                   holidays: bool = True):
    """What the range holds: for "N D" the last N sessions (N weekdays without holidays),
    else every session's part in the clock window."""
    parsed = ib_limits.parse_duration(duration)
    if parsed.unit == "D":
        first = sessions_before(kind, use_rth, _ts(end), parsed.count)[0].start
        if not holidays:
            day = end.astimezone(NEW_YORK).date() + timedelta(days=1)
            weekdays = [d for d in (day - timedelta(days=i) for i in range(2 * parsed.count + 7))
                        if (s := markets.session_on(kind, use_rth, d, holidays=False))
                        and s.start < _ts(end)]
            first = markets.session_on(kind, use_rth, weekdays[parsed.count - 1],
                                       holidays=False).start
        return trading(kind, use_rth, first, _ts(end))
    return trading(kind, use_rth, _ts(end) - parsed.seconds, _ts(end))


def check_plan(chunks, duration, bar_size, end, kind, use_rth, *, exact=True):
    """No hole; every chunk valid, reliable in size and with trading in it; with the
    exchange calendar (``exact``) no two chunks fetch the same bars, and none asks for a
    window without trading (counting weekdays, the gateway may ask for a holiday)."""
    answers = [ib_answer(c, kind, use_rth) for c in chunks]
    got = [i for a in answers for i in a]
    assert uncovered(wanted_trading(duration, end, kind, use_rth, exact), got) == []
    for chunk, answer in zip(chunks, answers, strict=True):
        assert ib_limits.duration_problem(chunk.duration, bar_size) is None, chunk
        assert answer or not exact, f"{chunk} asks for a window without trading"
        off_grid = chunk.duration.endswith("D")  # a session may start between two bars
        bars = sum(-(-(hi - lo) // ib_limits.bar_seconds(bar_size)) + off_grid
                   for lo, hi in answer)
        assert bars <= ib_limits.RELIABLE_BARS or len(chunks) == 1, chunk
    ends = [c.end for c in chunks]
    assert ends == sorted(ends, reverse=True)  # newest first
    if exact and len(chunks) > 1:
        assert sum(hi - lo for lo, hi in got) == sum(hi - lo for lo, hi in merged(got))


# --------------------------------------------------------------------------- reading


def test_durations_and_bar_sizes_have_one_written_form():
    assert durations.normalize_duration(" 5   D ") == "5 D"
    assert durations.normalize_bar_size(" 1  HR") == "1 hour"
    assert durations.normalize_bar_size("1 Mins") == "1 min"
    with pytest.raises(ValueError, match="5 D"):
        durations.normalize_duration("one year")
    with pytest.raises(ValueError, match="IB's bar sizes"):
        durations.normalize_bar_size("7 mins")


def test_an_end_is_read_one_way_in_utc_whole_seconds():
    """The gateway, the parameter rules and load-history's --end all read ends here."""
    expect = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    for text in ("2026-11-27T21:00:00Z", "2026-11-27T21:00:00", " 2026-11-27T16:00:00-05:00 ",
                 "2026-11-27T21:00:00.900+00:00"):
        assert durations.normalize_end(text) == expect
    assert durations.normalize_end(expect.astimezone(NEW_YORK)) == expect
    now = expect.replace(microsecond=500_000)
    assert durations.normalize_end(None, now) == durations.normalize_end("", now) == expect
    # What a stored request holds is the same instant, as text.
    params = bar_parameters({"end": "2026-11-27T16:00:00.25-05:00"}, now=now)
    assert params["end"] == expect.isoformat() == "2026-11-27T21:00:00+00:00"
    # year 1 at +01:00 is before datetime's range once in UTC
    for bad in ("yesterday", "", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValueError, match="ISO datetime"):
            durations.normalize_end(bad)
    with pytest.raises(ValueError, match="timezone-aware"):
        durations.normalize_end(expect.replace(tzinfo=None))


def test_chunk_count_counts_the_requests_own_hours():
    # Regular hours: five 391-bar sessions per 1-min request, a week of clock time each.
    assert durations.chunk_count("4 W", "1 min") == 4
    # Extended hours: a session holds up to 24 h of bars, one per request (two days).
    assert durations.chunk_count("4 W", "1 min", use_rth=False) == 14
    assert durations.chunk_count("2000 S", "1 secs") == 1
    assert durations.chunk_count("2001 S", "1 secs") == 2
    assert durations.chunk_count("20 Y", "1 day", use_rth=False) == 1


def test_the_submit_limit_and_the_pacer_count_chunks_alike():
    """The submit check used to count every request as regular hours, so an extended-hours
    request passed with up to 4x the chunks the gateway then sends (the pacer's cost counted
    use_rth already); both now call ``chunk_count`` with the request's use_rth."""
    from v6ray.requests.model import new_request
    from v6ray.requests.rules import MAX_BAR_CHUNKS

    given = {"duration": "4 M", "bar_size": "1 min"}
    assert durations.chunk_count("4 M", "1 min") == 18
    assert bar_parameters(given)["duration"] == "4 M"
    with pytest.raises(InvalidRequest, match=f"needs 60 IB requests .limit {MAX_BAR_CHUNKS}"):
        bar_parameters({**given, "use_rth": False})
    short = {"duration": "2 D", "bar_size": "1 min", "use_rth": False}
    assert durations.chunk_count("2 D", "1 min", use_rth=False) == 1
    assert new_request("market_bars", "SPY", parameters=short).cost.large_bar == 1
    longer = {**short, "duration": "6 D"}
    assert durations.chunk_count("6 D", "1 min", use_rth=False) == 3
    assert new_request("market_bars", "SPY", parameters=longer).cost.large_bar == 3


# --------------------------------------------------------------------------- planning


def test_a_year_of_minute_bars_is_five_sessions_per_request():
    chunks = plan(END, "1 Y", "1 min")
    # One request per trading day before (365 "86400 S" windows, weekends included).
    assert 50 <= len(chunks) <= 52
    assert {c.duration for c in chunks[:-1]} == {"5 D"}  # 5 x 390 bars: IB answers in ~8 s
    assert chunks[0].end == END
    assert chunks[1].end == datetime(2025, 2, 28, 21, 0, tzinfo=UTC)  # Friday's close
    check_plan(chunks, "1 Y", "1 min", END, SessionKind.EQUITY, True)


def test_a_year_of_five_minute_bars_is_ten_requests():
    chunks = plan(END, "1 Y", "5 mins")
    assert len(chunks) == 10 and chunks[0].duration == "25 D"
    check_plan(chunks, "1 Y", "5 mins", END, SessionKind.EQUITY, True)


def test_what_ib_serves_reliably_in_one_request_is_asked_as_given():
    assert plan(END, "60 D", "1 hour") == [Chunk(END, "60 D")]
    assert plan(END, "5 D", "1 min") == [Chunk(END, "5 D")]
    assert plan(END, "1 W", "1 min") == [Chunk(END, "1 W")]
    assert plan(END, "2 Y", "1 day") == [Chunk(END, "2 Y")]
    assert plan(END, "2000 S", "1 secs") == [Chunk(END, "2000 S")]
    # Six sessions of 1-min bars are past the reliable size: IB answers slowly, or not in time.
    assert [c.duration for c in plan(END, "6 D", "1 min")] == ["5 D", "1 D"]


def test_holidays_and_weekends_are_never_asked_for():
    # Thanksgiving week 2025: Thursday closed, Friday a half day (13:00).
    friday = datetime(2025, 11, 28, 18, 0, tzinfo=UTC)
    chunks = plan(friday, "2 W", "1 min")
    # 10 sessions, Nov 14 (partly in the window) to Nov 28; the newest five skip Thursday.
    assert [c.duration for c in chunks] == ["5 D", "5 D"]
    assert chunks[1].end == datetime(2025, 11, 20, 21, 0, tzinfo=UTC)  # 28, 26, 25, 24, 21
    check_plan(chunks, "2 W", "1 min", friday, SessionKind.EQUITY, True)
    # A clock window over a weekend, a holiday, or the night with RTH: nothing to ask.
    assert plan(datetime(2025, 3, 9, 18, tzinfo=UTC), "3600 S", "1 min") == []
    assert plan(datetime(2025, 11, 27, 18, tzinfo=UTC), "3600 S", "5 secs") == []
    assert plan(datetime(2025, 3, 6, 23, tzinfo=UTC), "3600 S", "1 min") == []
    assert plan(datetime(2025, 3, 6, 23, tzinfo=UTC), "3600 S", "1 min",
                use_rth=False) != []


def test_seconds_bars_are_clock_windows_inside_the_sessions():
    chunks = plan(END, "2 D", "5 secs")
    assert [c.duration for c in chunks] == ["10000 S", "10000 S", "3400 S"] * 2
    assert chunks[0].end == END and chunks[3].end == datetime(2025, 3, 6, 21, tzinfo=UTC)
    check_plan(chunks, "2 D", "5 secs", END, SessionKind.EQUITY, True)
    # 1-second bars: IB's hard limit of 2000 bars is the chunk size.
    assert {c.duration for c in plan(END, "1 D", "1 secs")[:-1]} == {"2000 S"}


def test_futures_outside_rth_end_between_sessions():
    chunks = backfill_chunks(END, "1 W", "1 min", use_rth=False, sec_type="CONTFUT")
    # 23 h of 1-min bars: one session each; six overlap the week (Thursday 18:00 to 17:00
    # Friday Feb 28 reaches past its 16:00 start).
    assert [c.duration for c in chunks] == ["1 D"] * 6
    # Each older chunk ends at 17:00 ET, the daily halt, never inside a session.
    assert {c.end.astimezone(NEW_YORK).hour for c in chunks[1:]} == {17}


def test_daily_bars_in_the_unit_ib_wants():
    assert plan(END, "400 D", "1 day") == [Chunk(END, "2 Y")]
    assert plan(END, "200000 S", "1 day") == [Chunk(END, "3 D")]
    with pytest.raises(ValueError, match="20 Y"):
        plan(END, "21 Y", "1 day")


def test_hours_not_modelled_are_contiguous_day_windows():
    chunks = plan(END, "100000 S", "1 min", kind=None)
    assert [c.duration for c in chunks] == ["86400 S", "13600 S"]
    assert chunks[1].end == END - timedelta(days=1)
    assert durations.chunk_spans(172_860, 86_400, 120) == [86_400, 86_340, 120]


def test_bad_input_raises():
    for args in (("3 X", "1 min"), ("3 D", "7 mins"), ("30 S", "1 min")):
        with pytest.raises(ValueError):
            plan(END, *args)
    with pytest.raises(ValueError):
        plan(END.replace(tzinfo=None), "1 D", "1 min")
    with pytest.raises(ValueError):
        durations.chunk_spans(30, 86_400, 60)


def test_every_chunk_is_a_valid_market_bars_request():
    for chunk in backfill_chunks(END, "1 M", "1 min"):
        params = bar_parameters(
            {"duration": chunk.duration, "bar_size": "1 min", "end": chunk.end.isoformat()}
        )
        assert params["end"] == chunk.end.isoformat()
        assert params["duration"] == chunk.duration


def test_the_gateway_counts_weekdays_so_holidays_only_overlap():
    friday = datetime(2025, 11, 28, 18, 0, tzinfo=UTC)
    chunks = request_chunks(friday, "2 W", "1 min")
    assert [c.duration for c in chunks] == ["5 D", "5 D", "1 D"]  # Thanksgiving counted
    check_plan(chunks, "2 W", "1 min", friday, SessionKind.EQUITY, True, exact=False)
    # The first chunk of an open-ended request ends at now, which the handler sends as "".
    now = datetime(2025, 3, 5, 15, 0, 0, 123_000, tzinfo=UTC)
    end = durations.normalize_end(None, now)
    assert request_chunks(end, "2 W", "1 min")[0].end == end == now.replace(microsecond=0)
    # A window with no session of ours is still asked of IB (it may know better), plainly.
    sunday = datetime(2025, 3, 9, 18, tzinfo=UTC)
    assert request_chunks(sunday, "3600 S", "1 min") == [Chunk(sunday, "3600 S")]
    assert [c.duration for c in request_chunks(sunday, "100000 S", "1 min")] == [
        "86400 S", "13600 S"]


def test_the_gateways_chunks_follow_the_shared_rule_with_the_contracts_hours():
    end = datetime(2025, 1, 10, 21, 0, tzinfo=UTC)  # Friday 16:00 ET
    assert request_chunks(end, "5 D", "1 hour") == [Chunk(end, "5 D")]
    chunks = request_chunks(end, "3 D", "1 min", use_rth=False, sec_type="CONTFUT")
    assert [c.duration for c in chunks] == ["1 D"] * 3  # a 23 h futures session each
    assert chunks[1].end == end - timedelta(hours=23)  # Thursday 17:00 ET
    odd = request_chunks(end, "5000 S", "1 secs")
    assert [c.duration for c in odd] == ["2000 S", "2000 S", "1000 S"]
    for c in odd:
        assert ib_limits.duration_allowed(c.duration, "1 secs")


@settings(max_examples=150, deadline=None)
@given(
    bar_size=st.sampled_from([b for b, s in ib_limits.BAR_SIZE_SECONDS.items() if s < 86_400]),
    count=st.integers(min_value=1, max_value=40),
    unit=st.sampled_from("SDWM"),
    sec_type=st.sampled_from(sorted(KINDS)),
    use_rth=st.booleans(),
    holidays=st.booleans(),
    end=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_plans_cover_every_traded_bar_and_ask_for_no_idle_window(
    bar_size, count, unit, sec_type, use_rth, holidays, end
):
    duration = f"{count * (3600 if unit == 'S' else 1)} {unit}"
    end = end.replace(tzinfo=UTC)
    if ib_limits.parse_duration(duration).seconds < ib_limits.bar_seconds(bar_size):
        return
    kind = KINDS[sec_type]
    chunks = plan(end, duration, bar_size, use_rth=use_rth, kind=kind,
                  holidays=holidays)
    if len(chunks) == 1 and chunks[0].duration == duration:
        return  # as given: IB's own meaning of the duration
    check_plan(chunks, duration, bar_size, end, kind, use_rth, exact=holidays)


def test_weekday_sessions_are_a_superset_of_trading_days():
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(366)]
    for kind in SessionKind:
        real = {s.trade_date for s in markets.sessions_between(kind, True, days[0], days[-1])}
        weekdays = {s.trade_date for s in markets.sessions_between(kind, True, days[0], days[-1],
                                                                   holidays=False)}
        assert real < weekdays
