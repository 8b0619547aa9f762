"""What `v6ray up` does for the monitor page and prints about the dashboard (small, no Ray
at import): choose the port, make the token of a non-loopback monitor, start the actor."""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from v6ray import constants
from v6ray.errors import V6RayError

MONITOR_START_TIMEOUT = 60.0
TOKEN_FILE = "monitor_token"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK or host.startswith("127.")


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, requested: int | None) -> int:
    """The requested port; by default 8266, or any free port when that one is taken."""
    if requested:
        if not _free(host, requested):
            raise V6RayError(f"--monitor-port {requested}: {host}:{requested} is in use")
        return requested
    if requested is None and _free(host, constants.DEFAULT_MONITOR_PORT):
        return constants.DEFAULT_MONITOR_PORT
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def make_token_file(state_dir: str) -> str:
    """A fresh token, readable by this user only (a monitor beyond loopback needs it)."""
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, TOKEN_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(24))
    return path


def deploy_monitor(host: str, port: int | None, state_dir: str,
                   service: dict[str, Any]) -> tuple[str, str | None]:
    """Start (or find) the monitor actor; returns (its URL, its token file or None)."""
    import ray

    from v6ray.monitor.server import get_or_create_monitor

    token_file = None if is_loopback(host) else make_token_file(state_dir)
    monitor = get_or_create_monitor(host, choose_port(host, port), token_file=token_file,
                                     service=service)
    try:
        url = ray.get(monitor.url.remote(MONITOR_START_TIMEOUT),
                      timeout=MONITOR_START_TIMEOUT + 30)
    except Exception as exc:
        cause = getattr(exc, "cause", None) or exc
        raise V6RayError(f"the monitor page did not start: {cause}") from None
    return url, token_file


def dashboard_token_hint(auth_mode: str | None, env: dict[str, str] | None = None) -> str | None:
    """How to get the token Ray's dashboard asks for, as the exact command for this cluster."""
    if auth_mode != "token":
        return None
    env = dict(os.environ if env is None else env)
    if env.get("RAY_AUTH_TOKEN"):
        return "the value of RAY_AUTH_TOKEN in the environment `up` ran in"
    prefix = f"RAY_AUTH_TOKEN_PATH={env['RAY_AUTH_TOKEN_PATH']} " if env.get(
        "RAY_AUTH_TOKEN_PATH") else ""
    return f"{prefix}ray get-auth-token"
