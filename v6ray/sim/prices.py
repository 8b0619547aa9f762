"""Deterministic price paths: a seeded random walk per root symbol, by time index.

A price at a given instant depends only on (seed, root, instant), never on which
request asked first, so overlapping and chunked historical loads agree exactly.

Construction, in log price:
- a daily walk: one normal step per calendar day since ``EPOCH``, anchored to 0 at
  ``ANCHOR`` (so a symbol trades near its reference price today, whatever the seed);
- inside each UTC day, a Brownian bridge on a one-minute grid between the day's two
  endpoints; inside each minute, a bridge on a one-second grid.
The normals come from a counter-based hash (splitmix64 + Box-Muller) of
(seed, root, grid, index), so any index is computed directly without a generator state.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

EPOCH = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
ANCHOR = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400
MINUTES_PER_DAY = 1_440
N_DAYS = 16_500  # daily walk covers 2000-01-01 .. 2045
YEAR_SECONDS = 365.0 * DAY

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@lru_cache(maxsize=4096)
def stream_key(seed: int, root: str, grid: str) -> int:
    """A 64-bit key per (seed, root, grid); blake2b so it is stable across processes."""
    digest = hashlib.blake2b(f"{seed}|{root}|{grid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hashed_normals(key: int, index: np.ndarray) -> np.ndarray:
    """Standard normals, one per index, a pure function of (key, index).

    One splitmix64 hash per index; its two 32-bit halves feed Box-Muller.
    """
    mixed = _splitmix(np.array([key], dtype=np.uint64))[0]
    bits = _splitmix(np.asarray(index, dtype=np.int64).astype(np.uint64) + mixed)
    u1 = ((bits >> np.uint64(32)).astype(np.float64) + 1.0) * (1.0 / 4294967296.0)
    u2 = (bits & np.uint64(0xFFFFFFFF)).astype(np.float64) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


class PricePaths:
    """Log-price paths of root symbols for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._daily: dict[str, np.ndarray] = {}

    def _daily_levels(self, root: str, annual_vol: float) -> np.ndarray:
        levels = self._daily.get(root)
        if levels is None:
            steps = hashed_normals(stream_key(self.seed, root, "day"), np.arange(N_DAYS))
            steps *= annual_vol / np.sqrt(365.0)
            levels = np.concatenate(([0.0], np.cumsum(steps)))
            levels -= levels[(ANCHOR - EPOCH) // DAY]
            self._daily[root] = levels
        return levels

    def minutes(self, root: str, annual_vol: float, first: int, last: int) -> np.ndarray:
        """Log price at every minute index in [first, last] (minutes since EPOCH)."""
        first = max(first, 0)
        last = min(max(last, first), N_DAYS * MINUTES_PER_DAY - 1)
        levels = self._daily_levels(root, annual_vol)
        days = np.arange(first // MINUTES_PER_DAY, last // MINUTES_PER_DAY + 1)
        steps = np.arange(1, MINUTES_PER_DAY + 1)
        index = days[:, None] * MINUTES_PER_DAY + steps[None, :]
        walk = hashed_normals(stream_key(self.seed, root, "minute"), index)
        walk = np.concatenate((np.zeros((len(days), 1)), np.cumsum(walk, axis=1)), axis=1)
        frac = np.arange(MINUTES_PER_DAY + 1) / MINUTES_PER_DAY
        bridge = walk - frac[None, :] * walk[:, -1:]
        sigma = annual_vol / np.sqrt(365.0 * MINUTES_PER_DAY)
        start, end = levels[days][:, None], levels[days + 1][:, None]
        path = start + frac[None, :] * (end - start) + sigma * bridge
        flat = path[:, :-1].reshape(-1)  # a day's last point is the next day's first
        offset = days[0] * MINUTES_PER_DAY
        return flat[first - offset : last - offset + 1]

    def seconds(self, root: str, annual_vol: float, first: int, last: int) -> np.ndarray:
        """Log price at every second index in [first, last] (seconds since EPOCH)."""
        first_minute, last_minute = first // 60, last // 60 + 1
        anchors = self.minutes(root, annual_vol, first_minute, last_minute)
        minutes = np.arange(first_minute, last_minute)
        index = minutes[:, None] * 60 + np.arange(1, 61)[None, :]
        walk = hashed_normals(stream_key(self.seed, root, "second"), index)
        walk = np.concatenate((np.zeros((len(minutes), 1)), np.cumsum(walk, axis=1)), axis=1)
        frac = np.arange(61) / 60.0
        bridge = walk - frac[None, :] * walk[:, -1:]
        sigma = annual_vol / np.sqrt(365.0 * DAY)
        start, end = anchors[:-1][:, None], anchors[1:][:, None]
        path = start + frac[None, :] * (end - start) + sigma * bridge
        flat = path[:, :-1].reshape(-1)
        offset = first_minute * 60
        return flat[first - offset : last - offset + 1]

    def log_price_at(self, root: str, annual_vol: float, epoch_seconds: float) -> float:
        """Log price at one instant (second resolution): what snapshots quote."""
        second = int(epoch_seconds) - EPOCH
        return float(self.seconds(root, annual_vol, second, second)[0])

    def unit_noise(self, root: str, grid: str, index: np.ndarray) -> np.ndarray:
        """Deterministic standard normals for anything else (volumes, sizes, IV level)."""
        return hashed_normals(stream_key(self.seed, root, grid), index)
