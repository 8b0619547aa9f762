"""``v6ray up`` / ``v6ray down``: deploy the detached actors, watch them, stop them gracefully.

`up` records what it started in the state file (``v6ray.service.state``) before deploying, so
even a half-deployed service can be taken `down`. The graceful order: the scheduler stops
producing, the gateway stops claiming, finishes in-flight work, flushes its writers and
disconnects, then every v6ray actor is killed, then the Ray head if `up` started it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from v6ray import constants
from v6ray.errors import NotRunning, V6RayError
from v6ray.monitor.deploy import dashboard_token_hint, deploy_monitor
from v6ray.observability.logs import LogSettings, logging_config
from v6ray.service import cluster, placement
from v6ray.service.settings import Settings
from v6ray.service.state import ServiceState, results_dir
from v6ray.storage import location
from v6ray.storage.schemas import table_path

__all__ = ["ServiceState", "UpOptions", "connect_service", "down", "results_dir", "up"]

DEPLOY_TIMEOUT = 120.0  # actor creation + the gateway's first connect, on a busy machine
STOP_CALL_TIMEOUT = 30.0  # scheduler.stop / simulator.stop


class StopRequested(Exception):
    """SIGTERM (or `v6ray down` from another terminal) asked a foreground `up` to stop.

    Control flow inside `up`, caught there and never seen by a caller: not in errors.py."""


def connect_service(settings: Settings) -> ServiceState | None:
    """Connect this process to the service's cluster: --address, else the state file."""
    state = ServiceState.load(settings.data_path)
    if settings.ray_address:
        same = state is not None and state.ray_address == settings.ray_address
        cluster.connect(
            settings.ray_address,
            namespace=constants.NAMESPACE,
            auth_mode=state.auth_mode if same else None,
        )
        return state if same else None
    if state is None:
        raise NotRunning(f"no service recorded in {settings.data_path}")
    if not state.cluster_alive():
        raise NotRunning(
            f"the Ray cluster recorded in {ServiceState.path(state.base_data_dir)} "
            "is gone (run `v6ray down` to clean up)"
        )
    cluster.connect(state.ray_address, namespace=constants.NAMESPACE, auth_mode=state.auth_mode)
    return state


# --------------------------------------------------------------------------- up


@dataclass
class UpOptions:
    simulate: bool = False
    detach: bool = False
    schedule: str | None = None
    num_cpus: int | None = None
    log: LogSettings = field(default_factory=LogSettings)
    monitor: bool = True
    monitor_port: int | None = None  # None: 8266, or a free port when it is taken
    monitor_host: str = "127.0.0.1"

    def logging_config(self) -> Any:
        return logging_config(self.log)


def up(settings: Settings, options: UpOptions, out: TextIO = sys.stdout) -> int:
    import ray

    base = settings.data_path
    if not location.is_uri(base):
        os.makedirs(base, exist_ok=True)
    previous = ServiceState.load(base)
    alive = previous is not None and previous.cluster_alive()
    if alive and settings.ray_address and settings.ray_address != previous.ray_address:
        # One data dir, one service: a second one would share the journal and lose track
        # of the first one's cluster.
        raise V6RayError(
            f"a v6ray service on Ray {previous.ray_address} already uses {base}; "
            "stop it with `v6ray down` or pick another --data-dir"
        )
    if alive:
        cluster.connect(
            previous.ray_address, namespace=constants.NAMESPACE, auth_mode=previous.auth_mode,
            logging_config=options.logging_config(),
        )
        if _actor(constants.GATEWAY_ACTOR) is not None:
            mode = "SIMULATED" if previous.simulate else f"IB {previous.ib_host}:{previous.ib_port}"
            print(
                f"v6ray is already running ({mode}, Ray {previous.ray_address}, "
                f"data {previous.results_dir}); see `v6ray status`, stop with `v6ray down`",
                file=out,
            )
            return 0
        state = previous  # the cluster outlived its actors: deploy onto it again
    else:
        if previous is not None:
            print("cleaning up a service that is no longer running", file=out)
            _stop_recorded_cluster(previous, out)
            previous.remove()
        state = _start_or_join(settings, options, out)

    state.simulate, state.results_dir = options.simulate, results_dir(settings, options.simulate)
    state.time_scale, state.client_id = settings.time_scale, settings.client_id
    state.up_pid = None if options.detach else os.getpid()
    state.save()  # before deploying: a half-deployed service can still be taken `down`
    try:
        _deploy(settings, options, state, out)
    except BaseException:
        print("deploy failed; stopping what was started", file=sys.stderr)
        stop_service(state, timeout=10.0, out=out)
        raise
    state.save()
    if state.dashboard_url:
        print(f"Ray dashboard: {state.dashboard_url}", file=out)
        hint = dashboard_token_hint(state.auth_mode)
        if hint:
            print(f"  its token:   {hint}   (the dashboard asks for it once)", file=out)
    if state.monitor_url:
        print(f"monitor: {state.monitor_url}", file=out)
        if state.monitor_token_file:
            print(f"  its token:   cat {state.monitor_token_file}   (open the page with "
                  "?token=...)", file=out)
    print(f"Ray address:   {state.ray_address}", file=out)
    if cluster.is_loopback(state.ray_address):
        # Ray rewrites 127.0.0.1 to the machine's IP unless told it is a single machine,
        # and turns token auth on by itself only without an explicit address.
        auth = f"RAY_AUTH_MODE={state.auth_mode} " if state.auth_mode else ""
        print(
            f"from Python:   RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 {auth}"
            f"RAY_ADDRESS={state.ray_address} python -c 'import v6ray; v6ray.connect()'",
            file=out,
        )
    print(f"data:          {state.results_dir}", file=out)
    if options.detach:
        print("v6ray is running; `v6ray status` to watch, `v6ray down` to stop", file=out)
        ray.shutdown()
        return 0
    return _foreground(state, out)


def _start_or_join(settings: Settings, options: UpOptions, out: TextIO) -> ServiceState:
    base = settings.data_path
    common = dict(
        base_data_dir=base,
        results_dir=results_dir(settings, options.simulate),
        simulate=options.simulate,
        time_scale=settings.time_scale,
        ib_host=settings.ib_host,
        ib_port=settings.ib_port,
        client_id=settings.client_id,
    )
    if settings.ray_address:
        cluster.connect(settings.ray_address, namespace=constants.NAMESPACE,
                        logging_config=options.logging_config())
        print(f"joined the Ray cluster at {settings.ray_address}", file=out)
        return ServiceState(
            ray_address=settings.ray_address,
            owns_cluster=False,
            auth_mode=os.environ.get("RAY_AUTH_MODE"),
            **common,
        )
    print("starting a local Ray cluster (127.0.0.1) ...", file=out, flush=True)
    head = cluster.start_head(location.local_state_dir(base), num_cpus=options.num_cpus)
    state = ServiceState(
        ray_address=head.gcs_address,
        owns_cluster=True,
        head_pid=head.pid,
        head_temp_dir=head.temp_dir,
        head_log=head.log_path,
        dashboard_url=head.dashboard_url,
        auth_mode=head.auth_mode,
        **common,
    )
    state.save()
    try:
        cluster.connect(head.gcs_address, namespace=constants.NAMESPACE, auth_mode=head.auth_mode,
                        logging_config=options.logging_config())
    except BaseException:
        cluster.stop_head(head)
        state.remove()
        raise
    return state


def _deploy(settings: Settings, options: UpOptions, state: ServiceState, out: TextIO) -> None:
    import ray

    from v6ray.gateway.actor import get_or_create_gateway
    from v6ray.gateway.config import GatewayConfig
    from v6ray.queue.actor import get_or_create_queue
    from v6ray.scheduler.actor import get_or_create_scheduler

    data_dir = state.results_dir
    placement.check_shared_data_root(data_dir, ray.nodes())  # before anything is written
    if not location.is_uri(data_dir):
        os.makedirs(data_dir, exist_ok=True)
    queue = get_or_create_queue(data_dir)
    ray.get(queue.ping.remote(), timeout=DEPLOY_TIMEOUT)
    journal = table_path(data_dir, constants.REQUESTS_TABLE)
    print(f"RequestQueue ready (journal {journal})", file=out)

    host, port = settings.ib_host, settings.ib_port
    if options.simulate:
        from v6ray.sim import SimConfig
        from v6ray.sim.actor import get_or_create_simulator

        sim = get_or_create_simulator(
            SimConfig(host="127.0.0.1", port=0, time_scale=settings.time_scale)
        )
        host, port = "127.0.0.1", int(ray.get(sim.port.remote(), timeout=DEPLOY_TIMEOUT))
        print(
            f"SIMULATED IB Gateway on {host}:{port} (no real IB; time scale "
            f"{settings.time_scale:g}; data kept apart in {data_dir})",
            file=out,
        )
    state.ib_host, state.ib_port = host, port
    state.save()

    resources = ray.cluster_resources()
    node_resource = (
        constants.GATEWAY_NODE_RESOURCE if resources.get(constants.GATEWAY_NODE_RESOURCE) else None
    )
    config = GatewayConfig(
        host=host, port=port, client_id=settings.client_id, time_scale=settings.time_scale
    )
    gateway = get_or_create_gateway(config, data_dir, node_resource=node_resource)
    ray.get(gateway.start.remote(), timeout=DEPLOY_TIMEOUT)
    print(f"IBGateway started (IB {host}:{port}, client id {settings.client_id})", file=out)

    scheduler = get_or_create_scheduler(
        data_dir, config_path=options.schedule, simulate=options.simulate
    )
    ray.get(scheduler.start.remote(), timeout=DEPLOY_TIMEOUT)
    print("UnifiedScheduler started", file=out, flush=True)
    if options.monitor:
        state.monitor_url, state.monitor_token_file = deploy_monitor(
            options.monitor_host, options.monitor_port,
            location.local_state_dir(state.base_data_dir), {"simulate": options.simulate})
        print("V6RayMonitor started", file=out, flush=True)


def _foreground(state: ServiceState, out: TextIO) -> int:
    """Live one-line status until Ctrl-C / SIGTERM, then the graceful stop."""
    from v6ray.cli import status as status_view
    from v6ray.client.api import connect

    def on_sigterm(signum: int, frame: Any) -> None:
        raise StopRequested()

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    tty = out.isatty()
    print("running in the foreground; Ctrl-C stops it gracefully", file=out, flush=True)
    reason = "interrupted"
    try:
        client = connect(state.ray_address)
        last_plain = 0.0
        while True:
            try:
                line = status_view.one_line(client.stats())
            except NotRunning:
                reason = "the queue actor is gone"
                break
            if tty:
                out.write("\r\033[K" + line)
                out.flush()
            elif time.monotonic() - last_plain >= 10.0:  # logs get a line every 10 s
                print(line, file=out, flush=True)
                last_plain = time.monotonic()
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    except StopRequested:
        reason = "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if tty:
        out.write("\n")
    print(f"stopping ({reason}) ...", file=out, flush=True)
    # A second Ctrl-C during the graceful stop must not leave half a service behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return stop_service(state, timeout=60.0, out=out)


# --------------------------------------------------------------------------- down


def down(settings: Settings, *, timeout: float, out: TextIO = sys.stdout) -> int:
    base = settings.data_path
    state = ServiceState.load(base)
    if state is None and not settings.ray_address:
        raise NotRunning(f"nothing to stop: no service recorded in {base}")
    if (
        state is not None
        and state.up_pid
        and state.up_pid != os.getpid()
        and _is_foreground_up(state.up_pid)
    ):
        # A foreground `up` owns the service: ask it to stop, as Ctrl-C would.
        print(f"asking the foreground `v6ray up` (pid {state.up_pid}) to stop ...", file=out)
        os.kill(state.up_pid, signal.SIGTERM)
        if _wait_until(lambda: not _is_foreground_up(state.up_pid), timeout + 60.0):
            state = ServiceState.load(base)
            if state is None:
                print("v6ray stopped", file=out)
                return 0
        print("the foreground `up` did not finish; stopping directly", file=out)
        state = ServiceState.load(base)
    if state is None:  # --address without a recorded service
        state = ServiceState(
            base_data_dir=base,
            results_dir=base,
            ray_address=settings.ray_address or "",
            owns_cluster=False,
            simulate=False,
            time_scale=1.0,
            ib_host="",
            ib_port=0,
            client_id=0,
        )
    return stop_service(state, timeout=timeout, out=out)


def stop_service(state: ServiceState, *, timeout: float, out: TextIO) -> int:
    """Graceful stop of the actors, then the cluster if `up` started it; removes the state."""
    import ray

    leftovers: list[str] = []
    if state.cluster_alive():
        try:
            cluster.connect(
                state.ray_address, namespace=constants.NAMESPACE, auth_mode=state.auth_mode
            )
            leftovers = _stop_actors(timeout, out)
        except NotRunning:
            pass
        ray.shutdown()
    code = 0
    if leftovers:
        print(f"warning: actors still alive: {', '.join(leftovers)}", file=sys.stderr)
        code = 1
    if not _stop_recorded_cluster(state, out):
        code = 1
    state.remove()
    print("v6ray stopped", file=out, flush=True)
    return code


def _stop_recorded_cluster(state: ServiceState, out: TextIO) -> bool:
    head = state.head()
    if head is None:
        return True
    import ray

    if ray.is_initialized():
        ray.shutdown()
    left = cluster.stop_head(head)
    if left:
        print(f"warning: Ray processes still running: {left}", file=sys.stderr)
        return False
    print(f"Ray cluster {state.ray_address} stopped", file=out)
    return True


def _stop_actors(timeout: float, out: TextIO) -> list[str]:
    import ray

    steps: list[tuple[str, str, tuple[Any, ...], float]] = [
        (constants.SCHEDULER_ACTOR, "stop", (), STOP_CALL_TIMEOUT),
        (constants.GATEWAY_ACTOR, "shutdown", (timeout,), timeout + 15.0),
        (constants.SIMULATOR_ACTOR, "stop", (), STOP_CALL_TIMEOUT),
    ]
    for name, method, args, wait in steps:
        handle = _actor(name)
        if handle is None:
            continue
        try:
            ray.get(getattr(handle, method).remote(*args), timeout=wait)
            print(f"{name}: {method} done", file=out, flush=True)
        except Exception as exc:  # noqa: BLE001 - carry on: it is killed below anyway
            print(f"{name}: {method} failed ({type(exc).__name__}); killing it", file=out)
    for name in _named_actors():
        handle = _actor(name)
        if handle is not None:
            ray.kill(handle, no_restart=True)
    _wait_until(lambda: not _named_actors(), 15.0)
    return _named_actors()


def _is_foreground_up(pid: int | None) -> bool:
    """``pid`` is still a `v6ray up` (not a recycled pid of something else)."""
    if not cluster.pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return "up" in argv and any("v6ray" in arg for arg in argv)


def _named_actors() -> list[str]:
    """Names of live actors in v6ray's namespace (detached ones outlive every driver)."""
    import ray

    return sorted(
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry.get("namespace") == constants.NAMESPACE
    )


def _actor(name: str) -> Any:
    import ray

    try:
        return ray.get_actor(name, namespace=constants.NAMESPACE)
    except ValueError:
        return None


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()
