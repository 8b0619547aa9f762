"""A real multi-node Ray cluster on this machine: a head and worker raylets, each its own
process group with its own ports and temp dir, every address 127.0.0.1.

The head is ``ray start --head --block`` with Ray's single-machine switch
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, what keeps a one-node v6ray on loopback). A
worker cannot be added by `ray start` with that switch on, and without it Ray rewrites
127.0.0.1 to the machine's network address, so workers are started by
``tests/cluster/worker_node.py`` (what Ray's own ``ray.cluster_utils`` does for a worker,
in a process of its own). Ray token auth is on: only holders of the module's token run code.

Why not ``ray.cluster_utils.Cluster`` itself: it writes ``/tmp/ray/ray_current_cluster``,
which a bare ``ray.init()`` of anyone else on the machine would then join, and its nodes
are children of the test process. Every process here is started in its own session, so a
node is killed (a crash: SIGKILL to its raylet and everything else it started) or stopped
by signalling exactly its process group, never by ``ray stop`` (which would end other
people's clusters too).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from v6ray.service.cluster import free_port, reachable

START_TIMEOUT = 180.0  # `ray start` takes ~5-40 s; far longer when the 2 cores are busy
STOP_TIMEOUT = 30.0
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"
START_ATTEMPTS = 3


class NodeStartFailed(RuntimeError):
    """A `ray start` exited or did not report "Ray runtime started" in time."""


@dataclass
class RayNode:
    name: str
    command: list[str]
    log_path: Path
    temp_dir: str
    resources: dict[str, float] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_offset: int = 0  # where this start's lines begin in log_path

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalRayCluster:
    """Head plus workers on 127.0.0.1, all sharing ``env`` (AWS_*, auth) with the tests."""

    def __init__(self, workdir: Path, env: dict[str, str], *, num_cpus: int = 1) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.env.pop("RAY_ADDRESS", None)
        self.num_cpus = num_cpus
        self.nodes: dict[str, RayNode] = {}
        self.ip = LOOPBACK
        self.address = f"{self.ip}:{free_port(self.ip)}"

    # ------------------------------------------------------------------ start

    def start_head(self) -> RayNode:
        def role() -> list[str]:
            return [
                "--head", f"--port={self.address.rsplit(':', 1)[1]}",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}",
                f"--ray-client-server-port={free_port()}",
            ]  # fmt: skip

        return self._start_with_retries("head", role, {})

    def add_worker(self, name: str, resources: dict[str, float] | None = None) -> RayNode:
        return self._start_with_retries(
            name, lambda: ["--worker"], resources or {}
        )

    def _start_with_retries(self, name: str, role, resources: dict[str, float]) -> RayNode:
        """Ray gives a raylet a fixed 30 s to register with the GCS (ray/_private/node.py,
        ``raylet_start_wait_time_s``) and then exits; on a machine whose cores are busy
        that happens, so a node that exits while starting is started again."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start(name, role(), resources)
            except NodeStartFailed:
                self.stop(name)
                head = self.nodes.get("head")
                if attempt == START_ATTEMPTS or (name != "head" and not head.alive):
                    raise
                if name == "head":
                    self.address = f"{self.ip}:{free_port(self.ip)}"
        raise AssertionError("unreachable")

    def restart(self, name: str) -> RayNode:
        """Start a killed node again, with the same resources and a fresh temp dir."""
        node = self.nodes[name]
        return self.add_worker(name, node.resources)

    def _start(self, name: str, role: list[str], resources: dict[str, float]) -> RayNode:
        temp_dir = f"/tmp/v6t-{secrets.token_hex(3)}"  # short: unix socket paths live here
        log_path = self.workdir / f"ray-{name}.log"
        # Every other port is left to Ray, which picks a free one when it binds: a port
        # picked here could be taken by another Ray on the machine before it is bound.
        # This one defaults to a fixed 52365, which two nodes on one machine cannot share.
        agent_port = free_port()
        memory = 100 * 1024 * 1024
        if role == ["--worker"]:
            command = [
                sys.executable, "-m", "tests.cluster.worker_node", f"--address={self.address}",
                f"--temp-dir={temp_dir}", f"--num-cpus={self.num_cpus}",
                f"--object-store-memory={memory}", f"--dashboard-agent-listen-port={agent_port}",
                f"--resources={json.dumps(resources)}",
            ]  # fmt: skip
        else:
            command = [
                sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *role,
                f"--node-ip-address={self.ip}", f"--num-cpus={self.num_cpus}",
                f"--object-store-memory={memory}", f"--dashboard-agent-listen-port={agent_port}",
                f"--temp-dir={temp_dir}", "--disable-usage-stats",
            ]  # fmt: skip
            if resources:
                command.append(f"--resources={json.dumps(resources)}")
        node = RayNode(name, command, log_path, temp_dir, dict(resources))
        # A restarted node appends to its log: only what this start writes counts.
        node.log_offset = log_path.stat().st_size if log_path.exists() else 0
        env = {**self.env, SINGLE_MACHINE_ENV: "0"}
        with open(log_path, "ab") as log:
            node.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.workdir),
                start_new_session=True,  # its own process group: killed as one node
            )
        self.nodes[name] = node
        self._wait_started(node)
        return node

    def start(self, workers: dict[str, dict[str, float]]) -> None:
        """The head, then ``workers`` (name → resources). ``ray start --block`` on the head
        ends the whole head when any of its processes fails to start (its Ray client
        server gives up after a fixed wait on busy cores), so then everything starts again."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self.start_head()
                for name, resources in workers.items():
                    self.add_worker(name, resources)
                return
            except NodeStartFailed:
                self.shutdown()
                self.nodes.clear()
                self.address = f"{self.ip}:{free_port(self.ip)}"
                if attempt == START_ATTEMPTS:
                    raise

    def _wait_started(self, node: RayNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        head = self.nodes.get("head")
        while time.monotonic() < deadline:
            if node is not head and head is not None and not head.alive:
                raise NodeStartFailed(f"the head exited: {_tail(head.log_path)}")
            if not node.alive:
                raise NodeStartFailed(f"ray node {node.name} exited: {_tail(node.log_path)}")
            with open(node.log_path, "rb") as log:
                log.seek(node.log_offset)
                started = b"Ray runtime started" in log.read()
            if started and reachable(self.address, timeout=0.5):
                return
            time.sleep(0.5)
        raise NodeStartFailed(f"ray node {node.name} did not start: {_tail(node.log_path)}")

    # ------------------------------------------------------------------ faults / stop

    def kill(self, name: str) -> None:
        """Crash a node: SIGKILL its raylet and every process it started, at once."""
        node = self.nodes[name]
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=STOP_TIMEOUT)
            _kill_leftovers(node)

    def stop(self, name: str) -> None:
        """Stop a node as `ray start --block` does on SIGTERM, SIGKILL what is left."""
        node = self.nodes[name]
        if node.alive:
            node.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if node.process is not None:
                os.killpg(node.process.pid, signal.SIGKILL)
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=STOP_TIMEOUT)
        _kill_leftovers(node)
        shutil.rmtree(node.temp_dir, ignore_errors=True)

    def shutdown(self) -> None:
        """Workers first, the head (GCS) last."""
        for name in [n for n in self.nodes if n != "head"] + ["head"]:
            if name in self.nodes:
                self.stop(name)


def _kill_leftovers(node: RayNode) -> None:
    """Processes of the node that left its session (none expected) still name its temp dir."""
    marker = node.temp_dir.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-5:])
