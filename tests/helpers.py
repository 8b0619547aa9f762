"""Helpers shared by v6ray's tests: a clock they move by hand, waiting for something that
happens in another process, actor or thread, and rows of bars to write."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str = "the condition",
             interval: float = 0.05) -> T:
    """``predicate()`` every ``interval`` s until it is truthy (returned), or fail the test
    after ``timeout`` s naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class FakeClock:
    """A clock for code that takes one (``clock: Callable[[], float]``, or one that tells
    the time as an aware ``datetime``): it stands still until the test moves it."""

    def __init__(self, start: float | datetime = 0.0) -> None:
        self.now = start

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        step = timedelta(seconds=seconds) if isinstance(self.now, datetime) else seconds
        self.now += step


def market_bars(
    start: datetime,
    count: int,
    *,
    symbol: str = "SPY",
    bar_size: str = "1 min",
    close: float = 1.0,
    request_id: str = "r",
    **parameters: Any,
) -> Any:
    """``count`` consecutive bars of one series from ``start`` (a day apart for "1 day"
    bars, else a minute), as the ``market_bars`` Arrow table a writer takes; ``parameters``
    are a market_bars request's, naming the series (``use_rth``, ``sec_type``, ...)."""
    from v6ray.gateway.parsing import to_table
    from v6ray.requests.instruments import bar_series

    series = {"symbol": symbol, "bar_size": bar_size, "what_to_show": "TRADES",
              **bar_series(symbol, parameters)}
    step = timedelta(days=1) if bar_size == "1 day" else timedelta(minutes=1)
    return to_table("market_bars", [
        dict(request_id=request_id, **series, timestamp=start + i * step, open=1.0,
             high=2.0, low=0.5, close=close, volume=10.0)
        for i in range(count)
    ])
