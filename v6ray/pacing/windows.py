"""Sliding windows over event times (pure): IB's pacing rules count events in any window
of so many seconds, and ``WireRate`` is the message-rate rule kept at the socket."""

from __future__ import annotations

import bisect
import math

EPSILON = 1e-6  # added to a computed wait so the retry lands after the edge, not on it
# Writes stay at least this fraction of the average spacing apart: a late timer is made
# up at up to 1/0.75 = 1.33x the average rate, never in a burst a lagging reader bunches.
MIN_GAP_FRACTION = 0.75


class SlidingWindow:
    """At most ``limit`` weight in ANY interval of ``seconds``.

    Admitting an event at ``now`` only when the events in ``(now - seconds, now]`` plus it fit
    guarantees the rule for every window, since events are kept in time order. An event may
    be moved later (``restamp``) once we learn the receiver saw it later than we sent it.
    """

    def __init__(self, limit: int, seconds: float) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs limit >= 1 and seconds > 0")
        self.limit = limit
        self.seconds = seconds
        self._events: list[list[float]] = []  # [stamp, weight], sorted by stamp
        self._used = 0

    def _expire(self, now: float) -> None:
        cutoff = now - self.seconds
        gone = 0
        while gone < len(self._events) and self._events[gone][0] <= cutoff:
            self._used -= int(self._events[gone][1])
            gone += 1
        if gone:
            del self._events[:gone]

    def used(self, now: float) -> int:
        self._expire(now)
        return self._used

    def available(self, now: float) -> int:
        return max(0, self.limit - self.used(now))

    def available_by(self, now: float, horizon: float) -> int:
        """Slots free at ``now + horizon`` counting only what is recorded so far."""
        self._expire(now)
        cutoff = now + horizon - self.seconds
        still = sum(int(w) for stamp, w in self._events if stamp > cutoff)
        return max(0, self.limit - still)

    def delay(self, now: float, weight: int = 1) -> float:
        """Seconds until ``weight`` fits (0.0 = now); a weight above the limit fits when empty."""
        weight = min(weight, self.limit)
        self._expire(now)
        excess = self._used + weight - self.limit
        if excess <= 0:
            return 0.0
        for stamp, w in self._events:
            excess -= int(w)
            if excess <= 0:
                return max(EPSILON, stamp + self.seconds - now + EPSILON)
        return self.seconds  # unreachable: the events hold all of _used

    def record(self, now: float, weight: int = 1) -> list[float]:
        """Record an event; the returned handle can later be passed to ``restamp``."""
        self._expire(now)
        if self._events and now < self._events[-1][0]:
            now = self._events[-1][0]  # a clock that went backwards must not reorder events
        event = [now, float(weight)]
        self._events.append(event)
        self._used += weight
        return event

    def restamp(self, event: list[float], later: float) -> None:
        """Move ``event`` to ``later`` (never earlier); a no-op once it has expired."""
        if later <= event[0]:
            return
        for index, held in enumerate(self._events):
            if held is event:
                del self._events[index]
                event[0] = later
                bisect.insort(self._events, event, key=lambda e: e[0])
                return


class WireRate:
    """The message-rate rule, kept at the socket and measured between *actual* writes: at
    most ``limit`` writes in any ``window`` seconds, and at least ``min_gap`` between two.

    Why it holds at IB: IB counts messages when it *receives* them (error 100 "Max rate of
    messages per second has been exceeded"). The window is IB's second plus the receipt
    jitter we allow for (a message read up to that much later than the one before it), so
    whatever IB counts in any one second was written within one of our windows: at most
    ``limit``. Counting actual writes (not permits) is what makes it hold when the event
    loop is busy: a burst that leaves late is recorded late, and the next writes wait for
    it to leave the window. The gap keeps traffic smooth: a late timer is made up at up to
    1.33x the average rate, never in a burst.
    """

    def __init__(self, limit: int, window: float, min_gap: float) -> None:
        if min_gap < 0:
            raise ValueError("min_gap must be >= 0")
        self._window = SlidingWindow(limit, window)
        self.min_gap = min_gap
        self._last = -math.inf
        self._free_at = -math.inf  # when the rules first allowed the next write

    def delay(self, now: float) -> float:
        return max(0.0, self._last + self.min_gap - now, self._window.delay(now))

    def record(self, now: float) -> None:
        now = max(now, self._last)  # a clock that went backwards must not reorder writes
        self._last = now
        self._window.record(now)
        self._free_at = now + self.delay(now)

    def unused(self, now: float) -> float:
        """Seconds the rules have allowed a write without one being made (0.0 if none)."""
        return max(0.0, now - self._free_at) if math.isfinite(self._free_at) else 0.0
