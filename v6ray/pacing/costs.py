"""What a request takes from IB's budgets, as a ``Cost`` (pure; no ib_async, so the queue
actor can evaluate it inside the claim predicate without importing the IB client).

Each request type says what it costs in its spec (``v6ray.requests.types``); the cost is
computed once, when the request is made (or loaded from the journal), and kept on it
(``IBRequest.cost``).
"""

from __future__ import annotations

from dataclasses import dataclass

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


NO_COST = Cost()  # a plain message: no line, no historical slot
