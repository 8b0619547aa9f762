"""The Ray cluster under v6ray: start a head `v6ray up` owns, connect to a cluster, stop it.

Why it is done this way:
- ``ray stop`` kills every Ray cluster on the machine (other users', a test suite's), so
  v6ray never calls it. An owned head is ``ray start --head --block`` run as a child in its
  own session; ``--block`` makes it tear its processes down when signalled, so stopping
  the cluster is signalling that one process group.
- ``ray start`` writes ``<temp-dir>/ray_current_cluster``, which a bare ``ray.init()``
  elsewhere on the machine would then join. Each owned head gets its own short temp dir
  (short: Ray's unix socket paths live under it) so nobody else's ``ray.init()`` is hijacked.
- ``ray start --node-ip-address=127.0.0.1`` still advertises the machine's routable IP and
  binds the GCS and raylet on all interfaces unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
  (Ray's own "single machine" switch) is set; with it every port binds 127.0.0.1. A driver
  connecting to a loopback address needs the same switch, or Ray rewrites 127.0.0.1 to the
  routable IP and the connection fails.
- Ray >= 2.5x enables token authentication; an explicit address never turns it on by
  itself, so the auth mode the head was started with is recorded and re-applied.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v6ray.errors import ClusterStartFailed, NotRunning
from v6ray.service.ray_private import keep_loopback_as_loopback, refresh_ray_config

log = logging.getLogger(__name__)

HEAD_START_TIMEOUT = 90.0  # `ray start` takes ~5 s on an idle machine; CI shares 2 cores
HEAD_STOP_TIMEOUT = 30.0  # then SIGKILL whatever is left of the process group
OBJECT_STORE_BYTES = 512 * 1024 * 1024  # results are small Arrow tables; don't take 30% of RAM
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_MODE_ENV = "RAY_AUTH_MODE"


@dataclass(frozen=True)
class OwnedHead:
    pid: int  # the `ray start --block` process; also its process-group and session id
    gcs_address: str
    dashboard_url: str
    temp_dir: str
    log_path: str
    auth_mode: str | None


# --------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Ray address must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def is_loopback(address: str) -> bool:
    return split_address(address)[0] in _LOOPBACK_HOSTS


def reachable(address: str, timeout: float = 2.0) -> bool:
    """A TCP connect to the GCS: ray.init on a dead address retries for a minute."""
    try:
        host, port = split_address(address)
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def use_single_machine_mode() -> None:
    """Make Ray in this process keep 127.0.0.1 as 127.0.0.1 (see the module docstring)."""
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    keep_loopback_as_loopback()  # read at call time; the env only at import


def _default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"  # where Ray itself looks first


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return True
    return _default_token_path().exists()


def _prepare_auth(env: dict[str, str]) -> str | None:
    """The auth mode for a head we start: the user's RAY_AUTH_MODE, else Ray's default (token).

    Ray creates ``~/.ray/auth_token`` itself for local clusters; ``ray start`` does not, so
    when none exists one is generated as ``ray get-auth-token --generate`` would, but
    readable by its owner only. The token is never read or printed by v6ray.
    """
    if env.get(_AUTH_MODE_ENV):
        if env[_AUTH_MODE_ENV].lower() == "disabled":
            _warn_auth_disabled()
        return env[_AUTH_MODE_ENV]
    if not _token_available():
        create_token_file(_default_token_path())
    env[_AUTH_MODE_ENV] = "token"
    return "token"


def create_token_file(path: Path) -> bool:
    """Write a new random token to ``path`` (mode 0600, its folder 0700 if made here).

    Ray's own writer leaves it to the umask: 0644 under the usual 022, readable by every
    local user, and the token lets its holder run code in the cluster. Written to a
    private temporary file first and linked into place, so a reader never sees half a
    token and a token someone wrote meanwhile is kept (False then).
    """
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is subject to the umask
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_hex(32).encode())  # Ray's format: 256 random bits, hex
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


_auth_disabled_warned = False


def _warn_auth_disabled() -> None:
    """Once per process: without auth, anyone who reaches the cluster's ports runs code."""
    global _auth_disabled_warned
    if _auth_disabled_warned:
        return
    _auth_disabled_warned = True
    log.warning(
        "Ray token authentication is disabled (RAY_AUTH_MODE=disabled): any local "
        "user or process that reaches the cluster's ports can run code in it; unset "
        "RAY_AUTH_MODE to use a token"
    )


def apply_auth_mode(auth_mode: str | None) -> None:
    """Before connecting: use the auth mode the cluster was started with."""
    if auth_mode and not os.environ.get(_AUTH_MODE_ENV):
        os.environ[_AUTH_MODE_ENV] = auth_mode
    if not os.environ.get(_AUTH_MODE_ENV):
        return
    # Ray caches its config when it is imported; a process that imported Ray before the
    # variable was set (a notebook opened before `v6ray up`) must refresh it, as Ray does.
    refresh_ray_config()


# --------------------------------------------------------------------------- start / stop


def start_head(state_dir: str, *, num_cpus: int | None = None) -> OwnedHead:
    """Start a local head as our child in its own session and wait until its GCS answers."""
    os.makedirs(state_dir, exist_ok=True)
    gcs_port, dashboard_port = free_port(), free_port()
    client_port, agent_port = free_port(), free_port()
    temp_dir = f"/tmp/v6ray-{secrets.token_hex(4)}"
    log_path = os.path.join(state_dir, "ray-head.log")
    cpus = num_cpus if num_cpus else max(2, os.cpu_count() or 2)
    env = dict(os.environ)
    env[_SINGLE_MACHINE_ENV] = "0"
    env.pop("RAY_ADDRESS", None)  # a head must not try to join anything
    auth_mode = _prepare_auth(env)
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--port={gcs_port}",
        f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        f"--num-cpus={cpus}",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal of `up` must not hit Ray directly
            close_fds=True,
        )
    head = OwnedHead(
        pid=process.pid,
        gcs_address=f"127.0.0.1:{gcs_port}",
        dashboard_url=f"http://127.0.0.1:{dashboard_port}",
        temp_dir=temp_dir,
        log_path=log_path,
        auth_mode=auth_mode,
    )
    deadline = time.monotonic() + HEAD_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_head(head)
            raise ClusterStartFailed(
                f"`ray start` exited ({process.returncode}): {_tail(log_path)}"
            )
        if reachable(head.gcs_address, timeout=0.5) and _log_says_started(log_path):
            return head
        time.sleep(0.5)
    stop_head(head)
    raise ClusterStartFailed(
        f"Ray did not start within {HEAD_START_TIMEOUT:g} s: {_tail(log_path)}"
    )


def stop_head(head: OwnedHead, *, timeout: float = HEAD_STOP_TIMEOUT) -> list[int]:
    """SIGTERM the head, SIGKILL its process group after ``timeout``; returns pids left over.

    Only the `ray start` process is signalled: it stops its children in order. Signalling
    the whole group makes gcs_server start its own slow shutdown (~30 s instead of ~3 s).
    """
    ours = head_is_ours(head)  # a recycled pid (after a reboot) must never be signalled
    if ours:
        _kill(head.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster_processes(head):
        _reap(head.pid)
        time.sleep(0.25)
    leftovers = cluster_processes(head)
    if leftovers:
        if ours:
            _signal_group(head.pid, signal.SIGKILL)
        for pid in leftovers:
            _kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        leftovers = cluster_processes(head)
    _reap(head.pid)
    if not leftovers and os.path.basename(head.temp_dir).startswith("v6ray-"):
        shutil.rmtree(head.temp_dir, ignore_errors=True)
    return leftovers


def cluster_processes(head: OwnedHead) -> list[int]:
    """Live processes of this cluster: in the head's session, or naming its temp dir.

    The session id is trusted only while it cannot belong to someone else: Linux does not
    reuse a pid that is still some process's session id, so it is ours if the head is
    ours, or if no live process has that pid (its orphans keep the number reserved).
    """
    # (A zombie head counts as gone: its pid cannot be reused until it is reaped.)
    trust_session = head_is_ours(head) or not pid_alive(head.pid)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            state, session = fields[0], int(fields[3])
            if state == "Z":
                continue
            if trust_session and session == head.pid:
                found.append(pid)
                continue
            cmdline = (entry / "cmdline").read_bytes()
            if head.temp_dir.encode() in cmdline:
                found.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return found


def head_is_ours(head: OwnedHead) -> bool:
    """The recorded head pid is still the `ray start` we launched (its temp dir is unique)."""
    return process_mentions(head.pid, head.temp_dir)


def process_mentions(pid: int | None, text: str) -> bool:
    """``pid`` is alive and ``text`` is part of its command line."""
    if not pid or not text:
        return False
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the head is our own child (`up` in the foreground)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _log_says_started(log_path: str) -> bool:
    try:
        return "Ray runtime started" in Path(log_path).read_text(errors="replace")
    except OSError:
        return False


def _tail(log_path: str) -> str:
    try:
        lines = [line for line in Path(log_path).read_text(errors="replace").splitlines() if line]
    except OSError:
        return "(no log)"
    last = lines[-1] if lines else "(empty log)"
    return f"{last.strip()} (full log: {log_path})"


# --------------------------------------------------------------------------- connect


def connect(
    address: str, *, namespace: str, auth_mode: str | None = None, logging_config: Any = None,
    ray_resolves: bool = False,
) -> bool:
    """Join the Ray cluster at ``address``: the only ``ray.init`` of v6ray (`up`, `down`,
    the CLI, ``v6ray.connect``). True if this call joined; False if the process already
    was in Ray (its own ``ray.init`` is kept, whatever cluster that is).

    A host:port address is joined as is, never through Ray's "auto":
    - nothing answering there is ``NotRunning`` within seconds (``ray.init`` on a dead
      address retries for a minute or more);
    - a loopback address stays loopback: without the single-machine switch, in a process
      that imported Ray without it (a notebook opened before `v6ray up`), Ray rewrites
      127.0.0.1 to the machine's routable IP and retries that for many minutes while the
      cluster listens on loopback only;
    - ``auth_mode`` (what `v6ray up` recorded for this address) is applied, else token
      auth when a token is at hand;
    - Ray's console noise is off, and ``logging_config`` (a ``ray.LoggingConfig``) sets up
      the workers of this job: `up` passes it so the actors it creates log at the chosen
      level into Ray's log files.
    Only with ``ray_resolves`` (``v6ray.connect``, which accepts what ``ray.init`` does)
    does any other address ("auto", "ray://…") go to Ray as it is, with Ray's defaults; a
    cluster that is not there is ``NotRunning``. The service's commands leave it off:
    they join the one host:port `up` recorded or was given, never whatever Ray finds.
    """
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {}
    if is_host_port(address) or not ray_resolves:
        if not reachable(address):
            raise NotRunning(f"no Ray cluster answers at {address}")
        if is_loopback(address):
            use_single_machine_mode()
        # Like Ray's own "auto": with a token at hand, speak token auth. A cluster without
        # auth accepts such a client too, so this never locks us out.
        apply_auth_mode(auth_mode or ("token" if _token_available() else None))
        options = {"logging_level": logging.ERROR, "job_config": _job_config(logging_config)}
    try:
        ray.init(address=address, namespace=namespace, log_to_driver=False, **options)
    except ConnectionError as exc:
        raise NotRunning(f"no Ray cluster at {address!r} ({exc})") from None
    return True


def is_host_port(address: str) -> bool:
    """``host:port``, as opposed to "auto" or a ``ray://`` client address."""
    try:
        split_address(address)
    except ValueError:
        return False
    return "://" not in address


def _job_config(logging_config: Any) -> Any:
    """The job's config carrying ``logging_config`` for its workers only: passed to
    ``ray.init`` directly it would also print Ray's INFO lines in this CLI process."""
    if logging_config is None:
        return None
    from ray.job_config import JobConfig

    job_config = JobConfig()
    job_config.set_py_logging_config(logging_config)
    return job_config
