"""The broker's own pacing of IB traffic (pure: no I/O, injected clock).

Three questions are answered here, and they are different:

* *May a request be admitted into the gateway's batch now?* (``Pacer.budget``): a
  ``Budget`` of plain numbers handed to the queue, which weighs each request's stored cost
  against it (``admission``). A request that does not fit is skipped, not blocking
  cheaper requests behind it.
* *May a request's resources be taken now?* (``historical_delay`` / ``line_delay``):
  sliding windows over send times, open-request and line counts.
* *May the next message be written to the socket now?* (``wire_delay``): every message the
  connection writes, ours and ib_async's own, is paced at the socket (``WireRate``).

The gateway's async ``PermitGate`` (``v6ray.gateway.permits``) waits for both and then
writes.

Every historical window is IB's unscaled number × ``time_scale``, widened by a small margin
so that jitter between our send and IB's receipt never squeezes two windows into one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from v6ray.pacing import ib_limits
from v6ray.pacing.admission import Budget
from v6ray.pacing.costs import Cost
from v6ray.pacing.windows import EPSILON, MIN_GAP_FRACTION, SlidingWindow, WireRate

Clock = Callable[[], float]


@dataclass(frozen=True)
class HistoricalCall:
    """One reqHistoricalData as the pacing rules see it."""

    symbol: str
    sec_type: str
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str  # "" = now
    use_rth: bool

    @property
    def small(self) -> bool:
        return ib_limits.is_small_bar(self.bar_size)

    @property
    def weight(self) -> int:
        return ib_limits.historical_weight(self.what_to_show)

    @property
    def contract_key(self) -> tuple[str, str, str, str]:
        """IB's "same contract, exchange and tick type" for the 2-second rule."""
        return (self.symbol, self.sec_type, self.exchange, self.what_to_show)


class PacingSettings(Protocol):
    """The tunables ``PacingLimits`` is derived from (``GatewayConfig`` holds them, with a
    comment on each choice); IB's own numbers come from ``ib_limits``."""

    time_scale: float
    messages_per_second: int
    receipt_jitter: float
    message_window_floor: float
    window_margin: float
    window_margin_seconds: float
    hist_max_open: int
    large_bar_requests: int
    large_bar_window: float
    line_budget: int
    pipeline_depth: int
    max_in_flight: int


@dataclass(frozen=True)
class PacingLimits:
    """Scaled budgets, derived from the gateway's settings and IB's numbers."""

    messages: int  # the most IB may count in any message_window at receipt
    message_window: float
    message_send_window: float  # message_window + receipt_jitter: the window at our end
    message_min_gap: float  # MIN_GAP_FRACTION of the average spacing
    receipt_jitter: float
    small_bar_requests: int
    small_bar_window: float
    identical_window: float
    same_contract_max: int
    same_contract_window: float
    max_open_historical: int
    large_bar_requests: int
    large_bar_window: float
    line_budget: int
    pipeline_depth: int
    max_in_flight: int

    @classmethod
    def from_config(cls, config: PacingSettings) -> PacingLimits:
        def scaled(seconds: float) -> float:
            return seconds * config.time_scale * (1 + config.window_margin) + (
                config.window_margin_seconds
            )

        # IB's 1-second message window, never below the floor: at tiny time scales a
        # millisecond window would be broken by any scheduler hiccup at the receiver.
        message_window = max(config.time_scale, config.message_window_floor)
        return cls(
            messages=config.messages_per_second,
            message_window=message_window,
            message_send_window=message_window + config.receipt_jitter,
            message_min_gap=(message_window + config.receipt_jitter)
            / config.messages_per_second * MIN_GAP_FRACTION,
            receipt_jitter=config.receipt_jitter,
            small_bar_requests=ib_limits.HIST_SMALL_BAR_REQUESTS_PER_WINDOW,
            small_bar_window=scaled(ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS),
            identical_window=scaled(ib_limits.HIST_IDENTICAL_WINDOW_SECONDS),
            same_contract_max=ib_limits.HIST_SAME_CONTRACT_MAX,
            same_contract_window=scaled(ib_limits.HIST_SAME_CONTRACT_WINDOW_SECONDS),
            max_open_historical=config.hist_max_open,
            large_bar_requests=config.large_bar_requests,
            large_bar_window=scaled(config.large_bar_window),
            line_budget=config.line_budget,
            pipeline_depth=config.pipeline_depth,
            max_in_flight=config.max_in_flight,
        )


@dataclass
class Pacer:
    """All of IB's limits the gateway enforces, over one clock."""

    limits: PacingLimits
    clock: Clock = time.monotonic
    _wire: WireRate = field(init=False)
    _sent_window: SlidingWindow = field(init=False)  # our own view of sends, for stats
    _small: SlidingWindow = field(init=False)
    _large: SlidingWindow = field(init=False)
    _identical: dict[HistoricalCall, float] = field(init=False, default_factory=dict)
    _per_contract: dict[tuple[str, ...], SlidingWindow] = field(init=False, default_factory=dict)
    # Window slots of requests still open, restamped when their answer arrives.
    _open_events: dict[HistoricalCall, list[Any]] = field(init=False, default_factory=dict)
    open_historical: int = field(init=False, default=0)
    lines_in_use: int = field(init=False, default=0)
    peak_lines: int = field(init=False, default=0)
    messages_sent: int = field(init=False, default=0)
    peak_messages_per_window: int = field(init=False, default=0)
    historical_sent: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        lim = self.limits
        self._wire = WireRate(lim.messages, lim.message_send_window, lim.message_min_gap)
        # Counts sends only (never refuses): a window as long as the receiver's.
        self._sent_window = SlidingWindow(1 << 30, lim.message_window)
        self._small = SlidingWindow(lim.small_bar_requests, lim.small_bar_window)
        self._large = SlidingWindow(lim.large_bar_requests, lim.large_bar_window)

    # --- messages (every write on the socket) -----------------------------------------
    def wire_delay(self) -> float:
        """Seconds until the next message may be written (0.0 = now)."""
        return self._wire.delay(self.clock())

    def wire_unused(self) -> float:
        """Seconds the socket has been free to take a message that nobody wrote."""
        return self._wire.unused(self.clock())

    def message_written(self) -> None:
        """A message was just written to the socket (ours or ib_async's own)."""
        now = self.clock()
        self._wire.record(now)
        self._sent_window.record(now)
        self.messages_sent += 1
        self.peak_messages_per_window = max(
            self.peak_messages_per_window, self._sent_window.used(now)
        )

    # --- historical requests ----------------------------------------------------------
    def historical_delay(self, call: HistoricalCall) -> float:
        """Seconds until ``call`` may be sent; ``inf`` while IB's open-request cap is full
        (that frees on a finish, not with time)."""
        now = self.clock()
        if self.open_historical >= self.limits.max_open_historical:
            return math.inf
        window = self._small if call.small else self._large
        delays = [window.delay(now, call.weight)]
        last = self._identical.get(call)
        if last is not None and now - last < self.limits.identical_window:
            delays.append(last + self.limits.identical_window - now + EPSILON)
        per_contract = self._per_contract.get(call.contract_key)
        if per_contract is not None:
            delays.append(per_contract.delay(now, call.weight))
        return max(delays)

    def take_historical(self, call: HistoricalCall) -> None:
        """Record ``call`` as sent now (its window slots, one open request); its message
        is counted by ``message_written`` when it reaches the socket."""
        now = self.clock()
        pacing_window = self._small if call.small else self._large
        window = self._per_contract.get(call.contract_key)
        if window is None:
            window = self._per_contract[call.contract_key] = SlidingWindow(
                self.limits.same_contract_max, self.limits.same_contract_window
            )
        self._open_events.setdefault(call, []).append(
            ((pacing_window, pacing_window.record(now, call.weight)),
             (window, window.record(now, call.weight)))
        )  # fmt: skip
        self._identical[call] = now
        self.open_historical += 1
        self.historical_sent += 1
        self._forget_old(now)

    def historical_finished(self, call: HistoricalCall | None = None) -> None:
        """``call``'s answer (or error) arrived: IB received it no later than now.

        IB counts a request when it receives it, which can be well after we sent it (a
        stalled receiver, a slow network). Re-anchoring the request's window slots at the
        answer's arrival keeps every window honest whatever that delay was.
        """
        self.open_historical = max(0, self.open_historical - 1)
        if call is None:
            return
        now = self.clock()
        events = self._open_events.get(call)
        if events:
            for window, event in events.pop(0):
                window.restamp(event, now)
            if not events:
                del self._open_events[call]
        if call in self._identical:
            self._identical[call] = max(self._identical[call], now)

    def _forget_old(self, now: float) -> None:
        """Bound memory: identical/per-contract state older than its window is useless."""
        if len(self._identical) > 4096:
            horizon = now - self.limits.identical_window
            self._identical = {k: t for k, t in self._identical.items() if t > horizon}
        if len(self._per_contract) > 4096:
            self._per_contract = {
                k: w for k, w in self._per_contract.items() if w.used(now) > 0
            }

    # --- market-data lines ------------------------------------------------------------
    def line_delay(self, n: int = 1) -> float:
        """0.0 when ``n`` lines are free; ``inf`` while lines are full (they free on an
        answer, not with time)."""
        if self.lines_in_use + min(n, self.limits.line_budget) > self.limits.line_budget:
            return math.inf
        return 0.0

    def take_lines(self, n: int = 1) -> None:
        self.lines_in_use += n
        self.peak_lines = max(self.peak_lines, self.lines_in_use)

    def return_lines(self, n: int = 1) -> None:
        self.lines_in_use = max(0, self.lines_in_use - n)

    # --- admission --------------------------------------------------------------------
    def budget(self, reserved: Cost, in_flight: int, horizon: float = 0.0) -> Budget:
        """Room for the next claim, given what admitted requests still hold in reserve.

        Look-ahead keeps the pacer fed, which is what keeps efficiency near 1: slots that
        free within ``horizon`` seconds (the gap until the next claim) are admitted now,
        plus ``pipeline_depth`` more; their permits still wait for the exact instant.

        Market-data lines look ahead by a whole line budget instead: a request takes its
        lines one snapshot at a time as they free (the permit gate), so it never needs all
        of them at once, and an option chain costs up to ``MAX_CHARGED_LINES`` (a whole
        budget). Looking ahead by ``pipeline_depth`` (8) lines would never admit a chain
        while one-line futures snapshots keep a few lines busy: chains would starve.
        """
        now = self.clock()
        lim = self.limits
        depth = lim.pipeline_depth
        return Budget(
            small_bar=self._small.available_by(now, horizon) + depth - reserved.small_bar,
            large_bar=self._large.available_by(now, horizon) + depth - reserved.large_bar,
            historical=lim.max_open_historical - self.open_historical + depth
            - reserved.historical,
            lines=lim.line_budget - self.lines_in_use + lim.line_budget - reserved.lines,
            requests=lim.max_in_flight - in_flight,
        )

    def budgets(self) -> dict[str, float | int]:
        """JSON-friendly view for ``IBGateway.stats()``."""
        now = self.clock()
        lim = self.limits
        return {
            "messages_per_window": lim.messages,
            "message_window_seconds": round(lim.message_window, 6),
            "message_send_window_seconds": round(lim.message_send_window, 6),
            "message_min_gap_seconds": round(lim.message_min_gap, 6),
            "receipt_jitter_seconds": lim.receipt_jitter,
            "messages_in_window": self._sent_window.used(now),
            "peak_messages_per_window": self.peak_messages_per_window,
            "messages_sent": self.messages_sent,
            "small_bar_available": self._small.available(now),
            "small_bar_limit": lim.small_bar_requests,
            "small_bar_window_seconds": round(lim.small_bar_window, 6),
            "large_bar_available": self._large.available(now),
            "historical_open": self.open_historical,
            "historical_open_limit": lim.max_open_historical,
            "historical_sent": self.historical_sent,
            "lines_in_use": self.lines_in_use,
            "line_budget": lim.line_budget,
            "peak_lines": self.peak_lines,
        }
