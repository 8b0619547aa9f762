"""Capped exponential backoff with full jitter: one pure function, applied by the queue's
retries and the gateway's reconnect watchdog alike."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1).

    ``base * 2**(attempt-1)`` capped at ``cap``; then up to ``jitter`` of it is taken off at
    random so that many clients that failed together do not retry together.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")
    # min() before the power would overflow for large attempt counts.
    exponent = min(attempt - 1, 62)
    delay = min(cap, base * (2.0**exponent))
    draw = (rng or random).random()
    return delay * (1.0 - jitter * draw)
