"""Helpers shared by v6ray's tests: a clock they move by hand, and waiting for something
that happens in another process, actor or thread."""

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
