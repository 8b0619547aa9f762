"""Which requests the gateway can take on at its next claim (pure, plain numbers).

The gateway sends the queue a ``Budget``: numbers, not code, so the queue actor never runs
the gateway's logic. The queue turns it into an ``Admission``, its claim predicate, which
accepts requests in priority order while each one's stored ``cost`` (computed when the
request was made) fits what is left; a request that does not fit is skipped, not blocking
cheaper requests behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Room for new work at the next claim, in each of IB's budgets (``Cost``'s units)."""

    small_bar: int
    large_bar: int
    historical: int
    lines: int
    requests: int  # how many requests, whatever they cost

    def admission(self) -> Admission:
        return Admission(self)


class Admission:
    """The claim predicate over one ``Budget``: shrinks as it accepts."""

    def __init__(self, budget: Budget) -> None:
        self.small_bar = budget.small_bar
        self.large_bar = budget.large_bar
        self.historical = budget.historical
        self.lines = budget.lines
        self.requests = budget.requests
        self.accepted = 0

    def __call__(self, request: Any) -> bool:
        """Accept ``request`` (anything with a ``cost``) if its cost fits what is left."""
        if self.requests <= 0:
            return False
        cost = request.cost
        if (
            cost.small_bar > self.small_bar
            or cost.large_bar > self.large_bar
            or cost.historical > self.historical
            or cost.lines > self.lines
        ):
            return False
        self.small_bar -= cost.small_bar
        self.large_bar -= cost.large_bar
        self.historical -= cost.historical
        self.lines -= cost.lines
        self.requests -= 1
        self.accepted += 1
        return True
