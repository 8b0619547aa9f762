"""What each ``v6ray`` command does, once ``v6ray.cli.main`` has parsed it.

Ray, polars and Delta are imported inside the commands that need them, so a usage error or
``v6ray show`` never pays for starting Ray.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from v6ray import constants
from v6ray.cli.arguments import parse_params
from v6ray.errors import CommandFailed, NotRunning, UsageError
from v6ray.service.settings import Settings


def dispatch(args: argparse.Namespace) -> int:
    _quiet_python_logging()
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    return handler(args)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        ray_address=getattr(args, "address", None),
        ib_host=getattr(args, "ib_host", None),
        ib_port=getattr(args, "ib_port", None),
        client_id=getattr(args, "client_id", None),
        time_scale=getattr(args, "time_scale", None),
    )


def _client(settings: Settings) -> Any:
    """A Client of the running service (``NotRunning`` with a hint otherwise)."""
    from v6ray.service import lifecycle as service

    state = service.connect_service(settings)
    from v6ray.client.api import connect

    address = settings.ray_address or (state.ray_address if state else "auto")
    return connect(address)


def _quiet_python_logging() -> None:
    import logging

    for name in ("ray", "ray.data", "ray.serve", "ray.util", "filelock"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --------------------------------------------------------------------------- up / down


def cmd_up(args: argparse.Namespace) -> int:
    from v6ray.observability.logs import LogSettings
    from v6ray.service import lifecycle as service

    options = service.UpOptions(
        simulate=args.simulate, detach=args.detach, schedule=args.schedule, num_cpus=args.num_cpus,
        log=LogSettings.from_env(level=args.log_level, format=args.log_format),
        monitor=not args.no_monitor, monitor_port=args.monitor_port,
        monitor_host=args.monitor_host,
    )
    if args.schedule and not os.path.isfile(args.schedule):
        raise UsageError(f"--schedule {args.schedule!r}: no such file")
    return service.up(_settings(args), options)


def cmd_monitor(args: argparse.Namespace) -> int:
    from v6ray.service import lifecycle as service

    settings = _settings(args)
    state = service.ServiceState.load(settings.data_path)
    if state is None or not state.cluster_alive():
        raise NotRunning(f"no service recorded in {settings.data_path}")
    if not state.monitor_url:
        raise CommandFailed("the service runs without its monitor page (`up --no-monitor`)")
    print(state.monitor_url)
    if state.monitor_token_file:
        print(f"token: cat {state.monitor_token_file}  (the page asks for it as ?token=...)")
    if args.open:
        import webbrowser

        webbrowser.open(state.monitor_url)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from v6ray.service import lifecycle as service

    return service.down(_settings(args), timeout=args.timeout)


# --------------------------------------------------------------------------- status / submit


def _simulator_stats() -> dict[str, Any]:
    """The simulator's own counters: what IB would have seen (violations must stay none)."""
    import ray

    try:
        actor = ray.get_actor(constants.SIMULATOR_ACTOR, namespace=constants.NAMESPACE)
        return ray.get(actor.stats.remote(), timeout=5)
    except Exception as exc:  # status must render whatever state the simulator is in
        return {"error": f"{type(exc).__name__}: {exc}"}


def cmd_status(args: argparse.Namespace) -> int:
    from v6ray.cli import status
    from v6ray.service import lifecycle as service

    settings = _settings(args)
    client = _client(settings)
    stats = client.stats()
    state = service.ServiceState.load(settings.data_path)
    if state is not None and state.simulate:
        stats["simulator"] = _simulator_stats()
    from v6ray.observability.actors import actor_table

    stats["actors"] = actor_table(client.namespace)
    info = asdict(state) if state else {"ray_address": settings.ray_address}
    info = {
        k: info.get(k)
        for k in (
            "ray_address",
            "dashboard_url",
            "simulate",
            "results_dir",
            "owns_cluster",
            "started_at",
            "ib_host",
            "ib_port",
            "monitor_url",
        )
    }
    print(status.to_json(stats, info) if args.json else status.to_text(stats, info))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from v6ray.requests.model import Status, new_request

    params = parse_params(args.param)
    kwargs: dict[str, Any] = {"parameters": params}
    if args.priority is not None:
        kwargs["priority"] = args.priority
    # Validate here too (pure, no Ray): bad input is reported even with no service running.
    new_request(args.request_type, args.symbol, **kwargs)
    client = _client(_settings(args))
    request_id = client.submit(args.request_type, args.symbol, **kwargs)
    if not args.wait:
        print(request_id)
        return 0
    print(f"{request_id} queued; waiting (up to {args.timeout:g} s) ...", file=sys.stderr)
    request = client.wait(request_id, timeout=args.timeout)
    status = Status(request.status)
    print(f"{request_id} {status.value} after {request.attempts} attempt(s)")
    if request.result_data:
        print(f"result: {_compact_json(request.result_data)}")
    if request.error_message:
        print(f"error: {request.error_message}")
    if status is not Status.SUCCESS:
        raise CommandFailed(
            f"request {request_id} ended {status.value}"
            + (f": {request.error_message}" if request.error_message else "")
        )
    return 0


def _compact_json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


# --------------------------------------------------------------------------- scripts


def cmd_load_history(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from v6ray.scripts.load_historical_data import load_from_args

    return _run_script(lambda: load_from_args(lambda: _client(settings), args))


def cmd_load_futures(args: argparse.Namespace) -> int:
    client = _client(_settings(args))
    from v6ray.scripts.load_futures_data import load_futures

    return _run_script(lambda: load_futures(client, args.roots or None, timeout=args.timeout))


def cmd_derive_stats(args: argparse.Namespace) -> int:
    from v6ray.service import lifecycle as service

    settings = _settings(args)
    client = _client(settings)
    from v6ray.scripts.derive_statistics import derive_statistics

    state = service.ServiceState.load(settings.data_path)
    data_dir = state.results_dir if state else settings.data_path
    simulate = bool(state and state.simulate)
    return _run_script(
        lambda: derive_statistics(client, data_dir, simulate=simulate, timeout=args.timeout)
    )


def _run_script(action: Callable[[], Any]) -> int:
    """Run one of the scripts (they draw their own progress on stderr while waiting)."""
    summary = action()
    print(summary.render())
    if not summary.ok:
        raise CommandFailed(f"{len(summary.failures)} request(s) failed (listed above)")
    return 0


# --------------------------------------------------------------------------- tables


def _tables_dir(args: argparse.Namespace, settings: Settings) -> str:
    """Where the tables are: --simulated, else what `up` recorded, else a guess that says so."""
    from v6ray.service import lifecycle as service

    base = settings.data_path
    from v6ray.storage import location

    simulated = location.join(base, constants.SIMULATED_DATA_SUBDIR)
    if getattr(args, "simulated", False):
        return simulated
    state = service.ServiceState.load(base)
    if state is not None:
        return state.results_dir
    from v6ray.errors import NoTables
    from v6ray.storage.reader import tables_home

    try:  # the same rule read_table follows: the base, else its simulated/ folder
        home = tables_home(base, constants.REQUESTS_TABLE)
    except NoTables:
        return base  # the command itself says there is nothing to read
    if home != base:
        print(f"(reading simulated data in {home})", file=sys.stderr)
    return home


def cmd_show(args: argparse.Namespace) -> int:
    from v6ray.storage.schemas import table_spec

    table_spec(args.table)  # UnknownTable (listing the known ones) before touching disk
    settings = _settings(args)
    directory = _tables_dir(args, settings)
    from v6ray.storage.location import is_uri

    # A folder can be checked up front; an object-store prefix has no such thing (read_table
    # then says there are no tables there).
    if not is_uri(directory) and not os.path.isdir(directory):
        raise CommandFailed(
            f"data dir {directory} does not exist (set --data-dir or "
            "V6RAY_DATA_DIR, or start with `v6ray up --simulate`)"
        )
    import polars as pl

    from v6ray.storage.reader import read_table

    frame = read_table(args.table, data_dir=directory)
    width = shutil.get_terminal_size((160, 24)).columns
    with pl.Config(
        tbl_rows=max(args.limit, 1), tbl_cols=-1, tbl_width_chars=width, fmt_str_lengths=40
    ):
        print(frame.tail(args.limit) if args.limit else frame.head(0))
    print(f"{frame.height} row(s) in {args.table} ({directory})", file=sys.stderr)
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from v6ray.storage.schemas import TABLES, table_spec

    names = [table_spec(args.table).name] if args.table else list(TABLES)
    settings = _settings(args)
    directory = _tables_dir(args, settings)
    for name in names:
        if name == constants.REQUESTS_TABLE:
            print(_compact_journal(settings, directory))
            continue
        from v6ray.storage.maintenance import compact_table

        result = compact_table(directory, name)
        if not result.get("exists"):
            print(f"{name}: no table yet")
        else:
            print(
                f"{name}: {result['files_before']} → {result['files_after']} files, "
                f"{result['files_vacuumed']} vacuumed ({result['seconds']} s)"
            )
    return 0


def _compact_journal(settings: Settings, directory: str) -> str:
    """``ib_requests`` has one writer, and only its writer may compact it: the running
    queue does (its ``compact`` is the journal's); with no service, a journal opened here."""
    import ray

    try:
        _client(settings)
    except NotRunning:
        return _compact_journal_here(directory)
    queue = ray.get_actor(constants.QUEUE_ACTOR, namespace=constants.NAMESPACE)
    result = ray.get(queue.compact.remote(), timeout=300)
    return f"{constants.REQUESTS_TABLE}: compacted by the queue ({_compact_json(result)})"


def _compact_journal_here(directory: str) -> str:
    """The journal the queue would open, opened as its writer for one compaction. Its
    writer lock refuses this while another process writes it (a queue this data dir's
    state record does not know of); on object storage there is no such lock, so a queue
    elsewhere might be writing: left to that queue."""
    from deltalake import DeltaTable

    from v6ray.errors import TableLocked
    from v6ray.queue.config import QueueConfig
    from v6ray.queue.journal import Journal
    from v6ray.storage.location import is_uri
    from v6ray.storage.schemas import table_path

    name = constants.REQUESTS_TABLE
    if is_uri(directory):
        return f"{name}: skipped (the running queue compacts its journal on object storage)"
    if not DeltaTable.is_deltatable(table_path(directory, name)):
        return f"{name}: no table yet"
    try:
        journal = Journal.for_queue(directory, QueueConfig(journal_lock_timeout_seconds=0.0))
    except TableLocked as exc:
        return f"{name}: skipped (another process writes it: {exc.detail})"
    try:
        result = journal.compact()
    finally:
        journal.close()
    return f"{name}: compacted ({_compact_json(result)})"


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "monitor": cmd_monitor,
    "submit": cmd_submit,
    "load-history": cmd_load_history,
    "load-futures": cmd_load_futures,
    "derive-stats": cmd_derive_stats,
    "show": cmd_show,
    "compact": cmd_compact,
}
