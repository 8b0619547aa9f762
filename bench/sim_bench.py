"""Simulator throughput through the real ib_async client, limits off.

Runs ``python -m v6ray.sim`` as a separate process and reads its CPU time from
/proc/<pid>/stat, so the simulator's CPU share is measured apart from the client's.
Prints responses per second, the simulator's CPU share, and each as a ratio to IB's
50 messages/s (the bar: >= 5x on one core).

    python bench/sim_bench.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from ib_async import IB, Option, Stock

REPO = Path(__file__).resolve().parents[1]
IB_MESSAGES_PER_SECOND = 50
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_simulator() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6ray.sim", "--port", "0", "--no-limits", "--time-scale", "0.01"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    banner = proc.stdout.readline()
    return proc, int(banner.split(":")[1].split()[0])


def measure(pid: int, seconds: float, batch) -> tuple[int, float, float]:
    """Run ``batch()`` (returns responses answered) until ``seconds`` pass."""
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    responses = 0
    while time.perf_counter() - wall0 < seconds:
        responses += batch()
    return responses, time.perf_counter() - wall0, cpu_seconds(pid) - cpu0


def report(name: str, responses: int, wall: float, cpu: float) -> None:
    rate = responses / wall
    per_cpu_second = responses / cpu if cpu else float("inf")
    print(f"{name:<11} {responses:>6} responses in {wall:5.2f} s = {rate:7.1f}/s "
          f"({rate / IB_MESSAGES_PER_SECOND:5.1f}x IB's 50/s); simulator CPU "
          f"{cpu:5.2f} s = {100 * cpu / wall:4.0f}% of one core; "
          f"{per_cpu_second:7.1f} responses per simulator CPU-second "
          f"({per_cpu_second / IB_MESSAGES_PER_SECOND:5.1f}x IB's 50/s on one core)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    args = parser.parse_args()
    proc, port = start_simulator()
    ib = IB()
    try:
        ib.connect("127.0.0.1", port, clientId=1, readonly=True, timeout=10)
        ib.client.MaxRequests = 0  # limits are off: measure the simulator, not the throttle
        [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
        chain = next(c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId)
                     if c.exchange == "SMART")
        expiry = sorted(chain.expirations)[4]
        options = [d.contract for d in ib.reqContractDetails(Option("SPY", expiry,
                                                                    exchange="SMART"))][:100]

        def snapshots() -> int:
            tickers = ib.reqTickers(*options)
            return sum(1 for t in tickers if t.modelGreeks is not None)

        def historical() -> int:
            async def batch():
                return await asyncio.gather(*(
                    ib.reqHistoricalDataAsync(spy, "", f"{1 + i % 5} D", "5 mins", "TRADES", True)
                    for i in range(50)))

            return sum(1 for bars in ib.run(batch()) if bars)

        print(f"IB simulator pid {proc.pid}, limits off, time scale 0.01, "
              f"{args.seconds:g} s per phase, client and simulator in separate processes")
        report("snapshots", *measure(proc.pid, args.seconds, snapshots))
        report("historical", *measure(proc.pid, args.seconds, historical))
    finally:
        ib.disconnect()
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
