"""Bench: a one-year backfill of 1-min and 5-min bars for SPY, QQQ and IWM, the old chunk
table against the new rule, side by side. Prints the IB requests each plan spends (and how
many of them ask for a window without trading) and the simulated wall time under the
gateway's own historical budgets, with the ratio before/after.

Plan-only, no sockets: each request's bars are counted on the simulator's own bar grid
(``v6ray.sim.historical.bar_intervals``, exchange holidays included) and answered after the
simulator's latency for them (``answer_latency``: a base latency plus IB's slow answers for
large requests, fitted to public reports, see ``v6ray.pacing.ib_limits``). Requests start in
submission order, as the queue hands them out, whenever the gateway's budgets allow: at
most ``hist_max_open`` open at once and, for bars over 30 s, ``large_bar_requests`` per
``large_bar_window`` seconds (bars of 30 s or less would take IB's 60 per 10 minutes).

    python bench/backfill.py [--end 2025-03-07T21:00:00Z] [--symbols SPY QQQ IWM]
"""

from __future__ import annotations

import argparse
import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from v6ray.gateway.config import GatewayConfig
from v6ray.pacing import ib_limits
from v6ray.requests.durations import backfill_chunks
from v6ray.sim.config import SimConfig
from v6ray.sim.historical import answer_latency, bar_intervals
from v6ray.sim.universe import UNDERLYINGS, underlying_instrument

# The "before" reference only: the longest duration per request the chunkers used to read
# from IB's step-size table, and their split (clock windows of at most a day, "86400 S",
# every calendar day of the range, trading or not).
OLD_MAX_DURATION_BY_BAR_SIZE = {
    "1 secs": "1800 S", "5 secs": "3600 S", "10 secs": "14400 S", "15 secs": "14400 S",
    "30 secs": "28800 S", "1 min": "1 D", "2 mins": "2 D", "3 mins": "1 W", "5 mins": "1 W",
    "10 mins": "1 W", "15 mins": "1 W", "20 mins": "1 W", "30 mins": "1 M", "1 hour": "1 M",
    "2 hours": "1 M", "3 hours": "1 M", "4 hours": "1 M", "8 hours": "1 M",
    "1 day": "20 Y", "1 week": "20 Y", "1 month": "20 Y",
}


def old_chunks(end: datetime, duration: str, bar_size: str) -> list[tuple[datetime, str]]:
    total = ib_limits.parse_duration(duration).seconds
    longest = ib_limits.parse_duration(OLD_MAX_DURATION_BY_BAR_SIZE[bar_size]).seconds
    if total <= longest:
        return [(end, duration)]
    step = min(longest, ib_limits.MAX_SECONDS_DURATION)
    spans = [step] * (total // step) + ([total % step] if total % step else [])
    out, covered = [], 0
    for span in spans:
        out.append((end - timedelta(seconds=covered), f"{span} S"))
        covered += span
    return out


def new_chunks(end: datetime, duration: str, bar_size: str) -> list[tuple[datetime, str]]:
    return [(c.end, c.duration) for c in backfill_chunks(end, duration, bar_size)]


@dataclass
class Outcome:
    requests: int = 0
    empty: int = 0  # answered "HMDS query returned no data"
    bars: int = 0
    wall: float = 0.0  # seconds from the first request sent to the last answer


def answers(symbols: Iterable[str], chunks: list[tuple[datetime, str]], bar_size: str,
            sim: SimConfig) -> list[tuple[float, int]]:
    """(answer latency, bars) of every request, in submission order."""
    out = []
    for symbol in symbols:
        instrument = underlying_instrument(UNDERLYINGS[symbol], "SMART")
        for end, duration in chunks:
            bars = len(bar_intervals(instrument, bar_size, ib_limits.parse_duration(duration),
                                     int(end.timestamp()), True))
            out.append((answer_latency(sim, bar_size, bars), bars))
    return out


def wall_time(latencies: list[float], bar_size: str, gateway: GatewayConfig) -> float:
    """When the last answer arrives if each request starts as soon as the budgets allow."""
    if ib_limits.is_small_bar(bar_size):
        limit = ib_limits.HIST_SMALL_BAR_REQUESTS_PER_WINDOW
        window = ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS
    else:
        limit, window = gateway.large_bar_requests, gateway.large_bar_window
    started: deque[float] = deque()  # start times inside the window
    open_until: list[float] = []  # finish times of open requests (a heap)
    now = last = 0.0
    for latency in latencies:
        while len(open_until) >= gateway.hist_max_open:
            now = max(now, heapq.heappop(open_until))
        while started and started[0] <= now - window:
            started.popleft()
        if len(started) >= limit:
            now = max(now, started[0] + window)
            started.popleft()
        started.append(now)
        heapq.heappush(open_until, now + latency)
        last = max(last, now + latency)
    return last


def measure(plan, symbols, end, bar_size, sim, gateway) -> Outcome:
    chunks = plan(end, "1 Y", bar_size)
    done = answers(symbols, chunks, bar_size, sim)
    return Outcome(len(done), sum(1 for _, b in done if b == 0), sum(b for _, b in done),
                   wall_time([latency for latency, _ in done], bar_size, gateway))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--end", default="2025-03-07T21:00:00+00:00", help="ISO end (UTC)")
    parser.add_argument("--symbols", nargs="+", default=["SPY", "QQQ", "IWM"])
    args = parser.parse_args(argv)
    end = datetime.fromisoformat(args.end.replace("Z", "+00:00")).astimezone(UTC)
    sim, gateway = SimConfig(), GatewayConfig()
    print(f"backfill: 1 Y of RTH bars for {', '.join(args.symbols)} ending {end:%Y-%m-%d %H:%M}"
          f" UTC; {gateway.large_bar_requests} large-bar requests per "
          f"{gateway.large_bar_window:g} s, {gateway.hist_max_open} open at once")
    header = (f"{'bar size':<9}{'requests old':>13}{'new':>6}{'ratio':>7}{'empty old':>11}"
              f"{'new':>5}{'wall old':>10}{'new':>8}{'ratio':>7}{'bars old/new':>15}")
    print(header)
    for bar_size in ("1 min", "5 mins"):
        old = measure(old_chunks, args.symbols, end, bar_size, sim, gateway)
        new = measure(new_chunks, args.symbols, end, bar_size, sim, gateway)
        print(f"{bar_size:<9}{old.requests:>13}{new.requests:>6}"
              f"{old.requests / new.requests:>6.1f}x{old.empty:>11}{new.empty:>5}"
              f"{old.wall:>9.0f}s{new.wall:>7.0f}s{old.wall / new.wall:>6.1f}x"
              f"{old.bars:>8}/{new.bars}")


if __name__ == "__main__":
    main()
