"""What one request will take from IB's budgets (pure; no ib_async, so the queue actor can
evaluate it inside the claim predicate without importing the IB client).

A new request type without an entry here costs one plain message: add an entry when its
handler uses historical requests or market-data lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from v6ray import ib_limits
from v6ray.requests import durations

# Chunks of one market_bars request are sent one after another, so only a few are ever
# waiting for the window at once; charging the whole count would make a long backfill
# unclaimable behind a stream of short requests.
MAX_CHARGED_CHUNKS = 4
MAX_CHARGED_LINES = 100


@dataclass(frozen=True)
class Cost:
    small_bar: int = 0  # slots of the 60-per-10-minutes window (BID_ASK counts twice)
    large_bar: int = 0  # slots of the soft window for bars > 30 s
    historical: int = 0  # historical requests open at once (IB: 50)
    lines: int = 0  # market-data lines held at once

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.small_bar + other.small_bar,
            self.large_bar + other.large_bar,
            self.historical + other.historical,
            self.lines + other.lines,
        )

    def __sub__(self, other: Cost) -> Cost:
        return Cost(
            max(0, self.small_bar - other.small_bar),
            max(0, self.large_bar - other.large_bar),
            max(0, self.historical - other.historical),
            max(0, self.lines - other.lines),
        )


def _market_bars(params: Mapping[str, Any]) -> Cost:
    bar_size = params.get("bar_size", "1 hour")
    count = durations.chunk_count(params.get("duration", "5 D"), bar_size,
                                  params.get("use_rth", True))
    chunks = min(count, MAX_CHARGED_CHUNKS)
    slots = chunks * ib_limits.historical_weight(params.get("what_to_show", "TRADES"))
    if ib_limits.is_small_bar(bar_size):
        return Cost(small_bar=slots, historical=1)
    return Cost(large_bar=slots, historical=1)


def _option_chain(params: Mapping[str, Any]) -> Cost:
    sides = 1 if params.get("rights") in ("C", "P") else 2
    expiries = 1 if "dte" in params or "dte_min" not in params else 3
    lines = int(params.get("strikes", 10)) * 2 * sides * expiries + 1  # + the underlying
    return Cost(lines=min(lines, MAX_CHARGED_LINES))


COST_FUNCTIONS: dict[str, Callable[[Mapping[str, Any]], Cost]] = {
    "market_bars": _market_bars,
    "option_chain": _option_chain,
    "futures_snapshot": lambda params: Cost(lines=1),
    "position_update": lambda params: Cost(),
}


def request_cost(request: Any) -> Cost:
    """Cost of an ``IBRequest`` (anything with ``request_type`` and ``parameters``)."""
    rtype = getattr(request.request_type, "value", request.request_type)
    func = COST_FUNCTIONS.get(str(rtype))
    return func(request.parameters or {}) if func else Cost()
