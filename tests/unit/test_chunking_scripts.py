"""The load scripts against an in-memory client: what they enqueue, how they wait, what the
summary says (no Ray)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest

from v6ray.cli.main import make_parser as make_cli_parser
from v6ray.errors import InvalidRequest, RequestTimeout
from v6ray.requests.model import Status, request_from_submission
from v6ray.scripts.load_futures_data import load_futures, quarterly_months, third_friday
from v6ray.scripts.load_historical_data import (
    history_requests,
    load_from_args,
    load_history,
    main,
    make_parser,
)
from v6ray.scripts.progress import Progress, Summary

END = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


class FakeClient:
    """Validates like the queue, coalesces identical submissions, finishes them on wait."""

    def __init__(self, rows=10, fail_symbols=(), stuck_symbols=()):
        self.requests = {}
        self.by_key = {}
        self.rows = rows
        self.fail_symbols = set(fail_symbols)
        self.stuck_symbols = set(stuck_symbols)
        self.waits = []

    def submit_many(self, items):
        ids = []
        for item in items:
            request = request_from_submission(item)
            existing = self.by_key.get(request.dedup_key)
            if existing is None:
                self.requests[request.request_id] = request
                self.by_key[request.dedup_key] = request.request_id
                existing = request.request_id
            ids.append(existing)
        return ids

    def get(self, request_id):
        return self.requests.get(request_id)

    def wait(self, request_id, timeout=60):
        self.waits.append(request_id)
        request = self.requests[request_id]
        if request.symbol in self.stuck_symbols:
            raise RequestTimeout(request_id, timeout)
        if request.symbol in self.fail_symbols:
            done = request.with_changes(
                status=Status.FAILED, error_message="IB error 200: no security"
            )
        else:
            done = request.with_changes(status=Status.SUCCESS, result_data={"rows": self.rows})
        self.requests[request_id] = done
        return done


def test_history_requests_chunk_every_symbol_on_its_exchange_calendar():
    items = history_requests(["spy", "QQQ", "SPY", "ES"], duration="2 W", bar_size="1 min",
                             end=END)
    assert [i["symbol"] for i in items] == ["SPY", "SPY", "QQQ", "QQQ", "ES", "ES"]
    assert {i["priority"] for i in items} == {3}
    plan = {(i["symbol"], i["parameters"]["end"], i["parameters"]["duration"]) for i in items}
    # Thanksgiving week 2026: NYSE closed Thursday and closes at 13:00 ET on Friday, so the
    # nine sessions are 5 + 4 (1-min bars: at most ~2000 per request, 5 full sessions).
    assert {("SPY", "2026-11-27T18:00:00+00:00", "5 D"),
            ("SPY", "2026-11-19T21:00:00+00:00", "4 D")} <= plan
    # CME trades a short Thursday: two half days let six sessions into the first request.
    assert {("ES", "2026-11-27T18:00:00+00:00", "6 D"),
            ("ES", "2026-11-19T21:00:00+00:00", "4 D")} <= plan


def test_a_range_without_trading_loads_nothing():
    sunday = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    assert history_requests(["SPY"], duration="3600 S", bar_size="1 min", end=sunday) == []
    summary = load_history(FakeClient(), ["SPY"], duration="3600 S", bar_size="1 min",
                           end=sunday, progress=False)
    assert summary.requests == 0 and summary.ok
    assert "nothing to load" in summary.render()


def test_load_history_waits_and_sums_rows_and_failures():
    client = FakeClient(rows=390, fail_symbols={"QQQ"})
    summary = load_history(
        client, ["SPY", "QQQ"], duration="2 W", bar_size="1 min", end=END, progress=False
    )
    assert summary.requests == 4
    assert summary.rows == 2 * 390
    assert len(summary.failures) == 2
    assert all(sym == "QQQ" and "no security" in reason for _, sym, reason in summary.failures)
    text = summary.render()
    assert "4 requests" in text and "780 rows" in text and "2 failures" in text
    assert "QQQ: FAILED: IB error 200" in text
    assert "2 W of 1 min bars in 2 chunk(s) per symbol" in text


def test_rerun_coalesces_and_timeouts_are_reported():
    client = FakeClient(stuck_symbols={"SPY"})
    summary = load_history(client, ["SPY"], duration="2 W", bar_size="1 min", end=END, timeout=5)
    assert [reason for _, _, reason in summary.failures] == [
        "not finished within 5 s (still PENDING)"
    ] * 2
    again = client.submit_many(history_requests(["SPY"], duration="2 W", bar_size="1 min", end=END))
    assert set(again) == set(client.requests)  # identical requests: the same ids


def test_bad_input_is_invalid_request():
    with pytest.raises(InvalidRequest):
        load_history(FakeClient(), [], duration="1 D", bar_size="1 min")
    with pytest.raises(InvalidRequest):
        load_history(FakeClient(), ["SPY"], duration="one year", bar_size="1 day")
    with pytest.raises(InvalidRequest, match="bar_size"):
        load_history(FakeClient(), ["SPY"], duration="1 D", bar_size="7 mins")
    with pytest.raises(InvalidRequest, match="20 Y"):
        load_history(FakeClient(), ["SPY"], duration="21 Y", bar_size="1 day")


def test_main_reports_a_user_error_in_one_line(capsys):
    assert main(["SPY", "--end", "yesterday", "--address", "nowhere:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


LOAD_FLAGS = ("symbols", "duration", "bar_size", "what_to_show", "all_hours", "end", "timeout",
              "progress")


def test_the_cli_and_the_script_take_the_same_load_flags_and_defaults():
    flags = ["SPY", "ES", "--duration", "3 D", "--bar-size", "1 min", "--what-to-show",
             "MIDPOINT", "--all-hours", "--end", "2026-11-27T21:00:00Z", "--timeout", "9",
             "--no-progress"]
    cli = make_cli_parser().parse_args(["load-history", *flags])
    script = make_parser().parse_args([*flags, "--address", "a:1", "--data-dir", "d"])
    assert {k: getattr(cli, k) for k in LOAD_FLAGS} == {k: getattr(script, k) for k in LOAD_FLAGS}
    cli_defaults = make_cli_parser().parse_args(["load-history", "SPY"])
    script_defaults = make_parser().parse_args(["SPY"])
    defaults = {k: getattr(script_defaults, k) for k in LOAD_FLAGS}
    assert {k: getattr(cli_defaults, k) for k in LOAD_FLAGS} == defaults == {
        "symbols": ["SPY"], "duration": "1 Y", "bar_size": "1 day", "what_to_show": "TRADES",
        "all_hours": False, "end": None, "timeout": 3600.0, "progress": None}


def test_every_load_flag_reaches_the_requests():
    args = make_cli_parser().parse_args(
        ["load-history", "SPY", "--duration", "2 D", "--bar-size", "1 hour", "--what-to-show",
         "MIDPOINT", "--all-hours", "--end", "2026-11-27T16:00:00-05:00", "--no-progress"])
    client = FakeClient()
    summary = load_from_args(lambda: client, args)
    assert summary.ok and summary.requests == 1
    (request,) = client.requests.values()
    assert request.parameters == {
        "duration": "2 D", "bar_size": "1 hour", "what_to_show": "MIDPOINT", "use_rth": False,
        "end": "2026-11-27T21:00:00+00:00"}


def test_a_bad_end_is_reported_before_connecting():
    def connect():
        raise AssertionError("connected")

    args = make_cli_parser().parse_args(["load-history", "SPY", "--end", "yesterday"])
    with pytest.raises(InvalidRequest, match="ISO datetime"):
        load_from_args(connect, args)


def test_quarterly_months_roll_after_the_third_friday():
    assert third_friday(2026, 12) == date(2026, 12, 18)
    assert quarterly_months(date(2026, 11, 28)) == ["202612", "202703"]
    assert quarterly_months(date(2026, 12, 18)) == ["202612", "202703"]
    assert quarterly_months(date(2026, 12, 19)) == ["202703", "202706"]


def test_load_futures_snapshots_two_months_and_daily_bars_per_root():
    client = FakeClient(rows=1)
    summary = load_futures(client, ["es", "NQ"], progress=False, today=date(2026, 11, 28))
    assert summary.requests == 6 and summary.ok
    kinds = sorted(
        (r.symbol, r.request_type.value, r.parameters.get("contract_month"))
        for r in client.requests.values()
    )
    assert kinds == [
        ("ES", "futures_snapshot", "202612"),
        ("ES", "futures_snapshot", "202703"),
        ("ES", "market_bars", None),
        ("NQ", "futures_snapshot", "202612"),
        ("NQ", "futures_snapshot", "202703"),
        ("NQ", "market_bars", None),
    ]
    assert "202612, 202703" in summary.render()


def test_progress_bar_draws_only_when_enabled():
    stream = io.StringIO()
    bar = Progress(4, "load", enabled=True, stream=stream)
    bar.advance()
    bar.advance(failed=True)
    bar.close()
    text = stream.getvalue()
    assert "2/4, 1 failed" in text and text.endswith("\n")
    quiet = io.StringIO()
    auto = Progress(4, "load", stream=quiet)  # not a TTY: nothing drawn
    auto.advance()
    auto.close()
    assert quiet.getvalue() == ""


def test_summary_render_without_failures():
    summary = Summary("derive-stats", requests=1, rows=1, elapsed=2.04)
    assert summary.render() == "derive-stats: 1 request, 1 row, 0 failures in 2.0 s"


def test_a_backfill_larger_than_one_submit_many_goes_in_several_durable_batches(monkeypatch):
    from v6ray.requests.model import Status, new_request
    from v6ray.scripts import progress

    monkeypatch.setattr(progress, "MAX_SUBMIT_MANY", 4)
    calls: list[int] = []

    class Client:
        def submit_many(self, items):
            assert len(items) <= 4  # what the queue would refuse with InvalidRequest
            calls.append(len(items))
            return [f"r{sum(calls) - len(items) + i}" for i in range(len(items))]

        def wait(self, request_id, timeout):
            return new_request("position_update", "*").with_changes(
                request_id=request_id, status=Status.SUCCESS)

    items = [{"request_type": "position_update", "symbol": "*"}] * 10
    finals = progress.submit_and_wait(Client(), items, progress.Summary("x"), label="x",
                                      timeout=5, progress=False)
    assert calls == [4, 4, 2]
    assert sorted(finals) == sorted(f"r{i}" for i in range(10))
