"""IB's limits as pure state machines; the caller passes ``now`` (seconds, any clock).

Nothing here sleeps or reads a clock, so unit tests drive it with a fake clock.
Windows arrive already scaled by the simulator's ``time_scale``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class RateVerdict(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"  # over 50/s: error 100, message dropped
    DISCONNECT = "disconnect"  # third breach: error 100 and the session is closed


class MessageRateLimiter:
    """Per-connection message rate: at most ``limit`` messages in any ``window`` seconds.

    A breach is a burst over the limit; it ends when a message is accepted again.
    The ``breaches_allowed``-th breach closes the session, as IB does on the third.
    """

    def __init__(self, limit: int, window: float, breaches_allowed: int) -> None:
        self.limit, self.window, self.breaches_allowed = limit, window, breaches_allowed
        self._times: deque[float] = deque()
        self._in_breach = False
        self.breaches = 0

    def admit(self, now: float) -> RateVerdict:
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            self._in_breach = False
            return RateVerdict.ACCEPT
        if not self._in_breach:
            self._in_breach = True
            self.breaches += 1
        if self.breaches >= self.breaches_allowed:
            return RateVerdict.DISCONNECT
        return RateVerdict.REJECT


class ReceiptWindow:
    """How many messages arrived in the last ``window`` seconds, and the most that ever did
    (IB's own view: counted at receipt, per connection). Rejected messages count too: IB
    reports them as received ("rec=51")."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self.peak = 0

    def observe(self, now: float) -> int:
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        self._times.append(now)
        self.peak = max(self.peak, len(self._times))
        return len(self._times)


class MarketDataLines:
    """Market-data lines shared by every connection; a key holds one line until released."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held: set[object] = set()
        self.peak = 0

    @property
    def in_use(self) -> int:
        return len(self._held)

    def acquire(self, key: object, enforce: bool = True) -> bool:
        if key in self._held:
            return True
        if enforce and len(self._held) >= self.capacity:
            return False
        self._held.add(key)
        self.peak = max(self.peak, len(self._held))
        return True

    def release(self, key: object) -> None:
        self._held.discard(key)


@dataclass(frozen=True)
class HistoricalQuery:
    """What IB's historical pacing looks at in one request."""

    contract: str  # con id or symbol/secType/expiry text: one contract
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str
    use_rth: bool
    small_bar: bool  # 30 s bars or less: the strict pacing rules apply
    weight: int  # BID_ASK counts twice

    @property
    def identity(self) -> tuple:
        return (self.contract, self.exchange, self.what_to_show, self.bar_size, self.duration,
                self.end, self.use_rth)

    @property
    def same_contract(self) -> tuple:
        return (self.contract, self.exchange, self.what_to_show)


@dataclass(frozen=True)
class PacingRules:
    max_open: int
    window_requests: int
    window: float
    identical_window: float
    same_contract_window: float
    same_contract_max: int


class HistoricalPacing:
    """Historical-data pacing across all connections.

    ``check`` returns None when the request may run (and records it), otherwise the
    violated rule: "open" (error 322) or a pacing reason (error 162). Rejected requests
    are not recorded, so they do not eat into the budget.
    """

    def __init__(self, rules: PacingRules) -> None:
        self.rules = rules
        self._recent: deque[tuple[float, HistoricalQuery]] = deque()  # small-bar requests
        self.open = 0
        self.peak_open = 0

    def _expire(self, now: float) -> None:
        rules = self.rules
        horizon = max(rules.window, rules.identical_window, rules.same_contract_window)
        while self._recent and now - self._recent[0][0] >= horizon:
            self._recent.popleft()

    def check(self, query: HistoricalQuery, now: float) -> str | None:
        rules = self.rules
        if self.open >= rules.max_open:
            return "open"
        if query.small_bar:
            self._expire(now)
            in_window = sum(q.weight for t, q in self._recent if now - t < rules.window)
            if in_window + query.weight > rules.window_requests:
                return f"more than {rules.window_requests} requests within {rules.window:g} s"
            if any(now - t < rules.identical_window and q.identity == query.identity
                   for t, q in self._recent):
                return f"identical request within {rules.identical_window:g} s"
            same = sum(q.weight for t, q in self._recent
                       if now - t < rules.same_contract_window
                       and q.same_contract == query.same_contract)
            if same + query.weight > rules.same_contract_max:
                return (f"{rules.same_contract_max + 1} or more requests for the same contract, "
                        f"exchange and tick type within {rules.same_contract_window:g} s")
            self._recent.append((now, query))
        return None

    def opened(self) -> None:
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)

    def closed(self) -> None:
        self.open = max(0, self.open - 1)
