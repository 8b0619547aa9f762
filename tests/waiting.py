"""Waiting in tests for something that happens in another process, actor or thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
