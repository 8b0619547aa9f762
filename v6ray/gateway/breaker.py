"""Circuit breaker for the IB connection (pure, injected clock).

closed ──N consecutive failures──▶ open ──open_seconds──▶ half_open ──success──▶ closed
                                    ▲                          │
                                    └────────failure───────────┘

While open, the gateway does not dial IB at all (a dead gateway is not hammered); after
``open_seconds`` one probe is allowed (half_open) and its outcome decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"  # normal: connect and request freely
    OPEN = "open"  # too many consecutive failures: wait, do not dial
    HALF_OPEN = "half_open"  # one probe allowed; its result closes or re-opens the circuit


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    open_seconds: float = 15.0
    clock: Callable[[], float] = time.monotonic
    consecutive_failures: int = field(default=0, init=False)
    opened_at: float | None = field(default=None, init=False)
    times_opened: int = field(default=0, init=False)
    _probing: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.open_seconds < 0:
            raise ValueError("failure_threshold >= 1 and open_seconds >= 0 required")

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self.clock() - self.opened_at >= self.open_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """May the caller try now? In half_open, only the first caller gets the probe."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until a probe is allowed (0 when allowed now)."""
        if self.opened_at is None or self._probing:
            return 0.0
        return max(0.0, self.opened_at + self.open_seconds - self.clock())

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self._probing or self.consecutive_failures >= self.failure_threshold:
            if self.opened_at is None or self._probing:
                self.times_opened += 1
            self.opened_at = self.clock()
            self._probing = False
