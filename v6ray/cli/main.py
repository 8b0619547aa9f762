"""The ``v6ray`` command: argument parsing and error reporting.

``make_parser()`` only describes the commands; ``main()`` parses, dispatches to
``v6ray.cli.commands`` (which imports Ray lazily, so ``v6ray --help`` and bad input answer
fast) and turns every error a user can cause into one line on stderr and a non-zero exit
code, never a traceback. ``V6RAY_DEBUG=1`` shows the traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from v6ray.cli.arguments import non_negative_int, positive_float
from v6ray.errors import CommandFailed, UsageError, V6RayError
from v6ray.requests.registry import SPECS
from v6ray.scripts import load_historical_data

EXIT_OK = 0
EXIT_ERROR = 1  # the command ran and failed (service not running, request FAILED, ...)
EXIT_USAGE = 2  # the command line itself is wrong (argparse uses 2 as well)
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but errors raise instead of exiting so ``main`` stays the only exit point."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("v6ray").strip()  # "submit", or "" at the top
        raise UsageError(f"{command}: {message}" if command else message)


# --------------------------------------------------------------------------- parser


def _service_options(*, address: bool = True) -> argparse.ArgumentParser:
    """--data-dir/--address shared by every command that talks to the service."""
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--data-dir",
        help="where the Delta tables and the service state live "
        "(env V6RAY_DATA_DIR, default ./v6ray-data)",
    )
    if address:
        parent.add_argument(
            "--address",
            help="Ray cluster address host:port (env V6RAY_RAY_ADDRESS; default: the cluster "
            "`v6ray up` recorded in the data dir)",
        )
    return parent


def _request_types_help() -> str:
    """Each request type: what it asks IB for and its parameters (from its spec)."""
    lines = ["request types (parameters, with defaults):"]
    for rtype, spec in SPECS.items():
        lines.append(f"  {rtype.value}: {spec.summary}")
        lines.append(f"      {spec.parameters_help() or 'no parameters'}")
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="v6ray",
        description="One durable priority queue and one IB connection for every Interactive "
        "Brokers market-data request. Start with `v6ray up --simulate`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    service = _service_options()
    data_only = _service_options(address=False)

    up = commands.add_parser(
        "up", parents=[service], help="start the service (Ray cluster, queue, gateway, scheduler)"
    )
    up.add_argument(
        "--simulate",
        action="store_true",
        help="run against the built-in IB Gateway simulator (data under <data-dir>/simulated)",
    )
    up.add_argument("--ib-host", help="IB Gateway/TWS host (env V6RAY_IB_HOST)")
    up.add_argument("--ib-port", type=int, help="IB Gateway/TWS port (env V6RAY_IB_PORT)")
    up.add_argument(
        "--client-id", type=non_negative_int, help="IB API client id (env V6RAY_CLIENT_ID)"
    )
    up.add_argument(
        "--time-scale",
        type=positive_float,
        help="scale every IB pacing window (1.0 for real IB; env V6RAY_TIME_SCALE)",
    )
    up.add_argument(
        "--detach", action="store_true", help="return once deployed and leave it running"
    )
    up.add_argument("--schedule", metavar="FILE", help="scheduler jobs file (optional)")
    up.add_argument(
        "--num-cpus",
        type=non_negative_int,
        help="CPUs of the local Ray cluster `up` starts (default: all)",
    )
    up.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="level of the actors' logs in Ray's log files (env V6RAY_LOG_LEVEL, default INFO)",
    )
    up.add_argument(
        "--log-format",
        type=str.lower,
        choices=("text", "json"),
        help="text lines or JSON lines (env V6RAY_LOG_FORMAT, default text)",
    )
    up.add_argument(
        "--monitor-port",
        type=non_negative_int,
        help="port of the monitor page (default 8266, or a free one if taken; 0: any)",
    )
    up.add_argument(
        "--monitor-host",
        default="127.0.0.1",
        help="address the monitor binds (default 127.0.0.1; any other needs its token)",
    )
    up.add_argument("--no-monitor", action="store_true", help="do not serve the monitor page")

    down = commands.add_parser("down", parents=[service], help="stop what `v6ray up` started")
    down.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        help="seconds the gateway gets to finish in-flight requests (default 60)",
    )

    monitor = commands.add_parser(
        "monitor", parents=[data_only], help="print the URL of the live monitor page"
    )
    monitor.add_argument("--open", action="store_true", help="open it in a web browser")

    status = commands.add_parser("status", parents=[service], help="show queue and gateway state")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    submit = commands.add_parser(
        "submit", parents=[service], help="queue one request",
        epilog=_request_types_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument(
        "request_type", metavar="TYPE", help=" | ".join(rtype.value for rtype in SPECS)
    )
    submit.add_argument("symbol", metavar="SYMBOL", help="symbol, root or * (all positions)")
    submit.add_argument("--priority", type=int, help="1 immediate, 2 normal, 3 background")
    submit.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a request parameter; VALUE is JSON when it parses (45, false), else text",
    )
    submit.add_argument("--wait", action="store_true", help="wait for the final status")
    submit.add_argument(
        "--timeout", type=positive_float, default=300.0, help="seconds to wait (default 300)"
    )

    history = commands.add_parser(
        "load-history",
        parents=[service],
        help="load historical bars for symbols",
        description=load_historical_data.DESCRIPTION,
    )
    load_historical_data.add_arguments(history)

    futures = commands.add_parser(
        "load-futures", parents=[service], help="snapshot futures (all configured roots)"
    )
    futures.add_argument("roots", nargs="*", metavar="ROOT")
    futures.add_argument(
        "--timeout", type=positive_float, default=3600.0, help="seconds to wait (default 3600)"
    )

    derive = commands.add_parser(
        "derive-stats", parents=[service], help="compute derived_statistics from stored data"
    )
    derive.add_argument(
        "--timeout", type=positive_float, default=3600.0, help="seconds to wait (default 3600)"
    )

    show = commands.add_parser(
        "show", parents=[data_only], help="print a table (no running service needed)"
    )
    show.add_argument("table", metavar="TABLE")
    show.add_argument(
        "--limit", type=non_negative_int, default=20, help="rows to print (default 20)"
    )
    show.add_argument(
        "--simulated",
        action="store_true",
        help="read <data-dir>/simulated (what `up --simulate` writes)",
    )

    compact = commands.add_parser(
        "compact", parents=[service], help="compact Delta tables (all when TABLE is omitted)"
    )
    compact.add_argument("table", nargs="?", metavar="TABLE")
    compact.add_argument("--simulated", action="store_true", help="compact <data-dir>/simulated")

    # `v6ray sim ...` is handed to v6ray.sim.cli.main unparsed (see main); these flags
    # document the contract in `v6ray --help` and keep the parser test honest.
    sim = commands.add_parser("sim", help="run the IB Gateway simulator in the foreground")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=4002)
    sim.add_argument("--seed", type=int)
    sim.add_argument("--time-scale", type=positive_float)
    sim.add_argument("--stats-file")
    return parser


# --------------------------------------------------------------------------- --param


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        # The simulator owns its flags (faults, limits, ...); hand it the rest as is.
        from v6ray.sim.cli import main as sim_main

        try:
            return _guarded(lambda: sim_main(args_list[1:]))
        except SystemExit as exc:  # its argparse exits on bad flags (after printing why)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        args = make_parser().parse_args(args_list)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE, usage_hint=True)
    except SystemExit as exc:  # --help / --version print and "exit"
        return exc.code if isinstance(exc.code, int) else EXIT_OK

    from v6ray.cli import commands

    return _guarded(lambda: commands.dispatch(args))


def _guarded(action: Any) -> int:
    try:
        code = action()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except CommandFailed as exc:
        return _fail(str(exc), EXIT_ERROR if exc.exit_code is None else exc.exit_code)
    except V6RayError as exc:  # settings errors included
        return _fail(str(exc), EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - the user gets one line, not a traceback
        if os.environ.get("V6RAY_DEBUG"):
            traceback.print_exc()
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else "")
        return _fail(message + " (V6RAY_DEBUG=1 shows the traceback)", EXIT_ERROR)
    return EXIT_OK if code is None else int(code)


def _fail(message: str, code: int, *, usage_hint: bool = False) -> int:
    line = " ".join(message.split())  # one line, whatever the exception text held
    if usage_hint:
        line += " (see `v6ray COMMAND --help`)"
    print(f"v6ray: error: {line}", file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point (``v6ray = "v6ray.cli.main:run"``)."""
    code = main()
    if _data_root_is_object_store(sys.argv[1:]):
        # Leave without the interpreter's teardown: deltalake's object-store I/O runs on
        # native threads, and tearing the interpreter down under one of them aborted a
        # `v6ray show` on S3 after it had printed its rows ("terminate called without an
        # active exception", exit -6). The command is done; its output is flushed first.
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _data_root_is_object_store(argv: Sequence[str]) -> bool:
    """Whether this command's data root (``--data-dir``, else ``V6RAY_DATA_DIR``) is an
    object-store URI; False when it cannot tell."""
    root = os.environ.get("V6RAY_DATA_DIR", "")
    for i, arg in enumerate(argv):
        if arg == "--data-dir" and i + 1 < len(argv):
            root = argv[i + 1]
        elif arg.startswith("--data-dir="):
            root = arg.split("=", 1)[1]
    try:
        from v6ray.storage.location import is_uri

        return bool(root) and is_uri(root)
    except V6RayError:
        return False
