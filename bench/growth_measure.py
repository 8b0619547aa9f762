"""What ``bench/growth.py``'s sections return, and the helpers they share."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """One figure measured on a small and a large history (same unit, same live work)."""

    name: str
    small: float
    large: float
    unit: str
    goal_ratio: float | None = None  # large / small at most this; None: shown, no goal
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.large / self.small if self.small else float("inf")


def side_by_side(
    measure: Callable[[str], dict[str, float]], rounds: int
) -> dict[str, dict[str, float]]:
    """``measure("small")`` and ``measure("large")`` alternately, ``rounds`` times each
    (so machine load hits both alike); the median of each figure per case."""
    seen: dict[str, list[dict[str, float]]] = {"small": [], "large": []}
    for _ in range(rounds):
        for case in ("small", "large"):
            seen[case].append(measure(case))
    return {
        case: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for case, results in seen.items()
    }
