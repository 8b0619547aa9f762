"""``V6RayMonitor``: the detached actor serving the monitor page (``web.make_app``).

Its HTTP server runs on an event loop of its own thread, started in ``__init__``: a
restarted actor serves again on the same port with nobody calling it. A thread, not the
actor's loop: this is a sync actor whose ``url`` blocks until the page is served, and the
server must not wait for a first call. On that loop the sampler runs as a supervised task
(``v6ray.actors.loops``) like every other actor loop. Once a second
it samples the queue's and the gateway's ``stats()`` (what `v6ray status --json`
shows) and keeps the last snapshots, so ``/api/status?seq=N`` can answer with exactly
the numbers a page is showing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import ray

from v6ray.actors.loops import Supervisor
from v6ray.constants import GATEWAY_ACTOR, MONITOR_ACTOR, NAMESPACE, QUEUE_ACTOR
from v6ray.monitor.snapshot import History, build_snapshot

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0  # the page polls every second; it must update at least every 2 s
STATS_TIMEOUT = 5.0
KEEP_SNAPSHOTS = 120
SAMPLER = "sampler"  # the supervised loop taking a snapshot every sample_seconds


class MonitorServer:
    def __init__(self, host: str, port: int, namespace: str = NAMESPACE,
                 token_file: str | None = None, service: dict[str, Any] | None = None,
                 sample_seconds: float = SAMPLE_SECONDS) -> None:
        self.host, self.port, self.namespace = host, port, namespace
        self.service = dict(service or {})
        self.sample_seconds = sample_seconds
        self._token = Path(token_file).read_text().strip() if token_file else None
        self._snapshots: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # the HTTP loop reads while a sampler thread writes
        self._history = History()
        self._seq = 0
        self._handles: dict[str, Any] = {}
        self._ready = threading.Event()
        self._error: str | None = None
        self._loops = Supervisor()  # on the server thread's event loop
        threading.Thread(target=self._run, name="monitor-http", daemon=True).start()

    def __repr__(self) -> str:  # the name the Ray dashboard shows for this actor
        return f"V6RayMonitor[{self.url_text()}]"

    def url_text(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # --- remote methods -----------------------------------------------------------------
    def url(self, timeout: float = 30.0) -> str:
        """The page's URL once it is served (raises if the port could not be bound)."""
        if not self._ready.wait(timeout):
            raise TimeoutError(f"monitor not serving after {timeout:g} s")
        if self._error:
            raise RuntimeError(self._error)
        return self.url_text()

    def ping(self) -> str:
        return "pong"

    # --- snapshots (SnapshotSource) -----------------------------------------------------
    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            return next(reversed(self._snapshots.values()), None)

    def by_seq(self, seq: int) -> dict[str, Any] | None:
        with self._lock:
            return self._snapshots.get(seq)

    # --- the server thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # the port is taken, say: url() reports it
            self._error = f"monitor could not serve on {self.host}:{self.port}: {exc}"
            log.error(self._error)
            self._ready.set()

    async def _serve(self) -> None:
        from aiohttp import web

        from v6ray.monitor.web import make_app

        runner = web.AppRunner(make_app(self, self._token), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._sample)  # a first snapshot before "ready"
        self._ready.set()
        log.info("monitor serving %s", self.url_text())
        # A sampling error restarts the sampler; the page keeps being served meanwhile.
        await self._loops.start(SAMPLER, self._sample_forever)

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sample_seconds)
            await loop.run_in_executor(None, self._sample)

    def _sample(self) -> None:
        queue = self._stats(QUEUE_ACTOR)
        gateway = self._stats(GATEWAY_ACTOR)
        now = time.time()
        self._history.add(now, queue, gateway)
        self._seq += 1
        snapshot = build_snapshot(self._seq, now, queue, gateway, self._history, self.service)
        with self._lock:
            self._snapshots[self._seq] = snapshot
            while len(self._snapshots) > KEEP_SNAPSHOTS:
                self._snapshots.popitem(last=False)

    def _stats(self, name: str) -> dict[str, Any]:
        try:
            handle = self._handles.get(name)
            if handle is None:
                handle = self._handles[name] = ray.get_actor(name, namespace=self.namespace)
            return ray.get(handle.stats.remote(), timeout=STATS_TIMEOUT)
        except Exception as exc:  # not running, restarting: the page says so
            self._handles.pop(name, None)
            return {"state": "unreachable", "error": f"{type(exc).__name__}: {exc}"[:300]}


def get_or_create_monitor(host: str, port: int, *, namespace: str = NAMESPACE,
                          name: str = MONITOR_ACTOR, token_file: str | None = None,
                          service: dict[str, Any] | None = None) -> Any:
    """The named, detached monitor actor on this node (the URL `up` prints is this node's)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return ray.remote(MonitorServer).options(
        name=name, namespace=namespace, lifetime="detached", get_if_exists=True,
        max_restarts=-1, num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(host, port, namespace, os.path.abspath(token_file) if token_file else None,
             service)
