"""``v6ray sim``: run the IB Gateway simulator in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from v6ray.constants import DEFAULT_IB_HOST, DEFAULT_IB_PORT
from v6ray.sim.config import SimConfig
from v6ray.sim.server import Simulator


def make_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``v6ray sim`` flags; pass a subparser to add them there."""
    parser = parser or argparse.ArgumentParser(
        prog="v6ray sim", description="Run the IB Gateway simulator (TWS socket protocol).")
    parser.add_argument("--host", default=DEFAULT_IB_HOST, help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_IB_PORT,
                        help="port to listen on (4002, IB Gateway paper; 0 for any)")
    parser.add_argument("--seed", type=int, default=0, help="market seed (same seed, same data)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every IB time window and latency by this")
    parser.add_argument("--stats-file", default=None,
                        help="keep a JSON file of the counters, refreshed every 0.5 s")
    parser.add_argument("--no-limits", action="store_true", help="turn off every IB limit")
    parser.add_argument("--market-data-lines", type=int, default=SimConfig.market_data_lines,
                        help="market-data lines (IB default 100)")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(host=args.host, port=args.port, seed=args.seed, time_scale=args.time_scale,
                     limits=not args.no_limits, market_data_lines=args.market_data_lines,
                     stats_file=args.stats_file)


async def _serve(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sim = Simulator(config)
    await sim.start()
    print(f"IB simulator listening on {config.host}:{sim.port} (seed {config.seed}, "
          f"time scale {config.time_scale:g}, limits {'on' if config.limits else 'off'})",
          flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"v6ray sim: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(config))
    except OSError as exc:  # port in use, address not available
        print(f"v6ray sim: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0
