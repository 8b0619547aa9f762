"""IBGateway: the detached Ray actor holding the only IB connection of v6ray.

A thin shell: it wires the watchdog (connection.py), the drain loop (drain.py), the pacer
and the breaker together, runs its loops under a supervisor (``v6ray.actors.loops``: a loop
that dies is restarted and counted), and answers ``start``/``stats``/``shutdown``/``ping``
(and ``resume``, which it calls on itself after every (re)creation).
``get_or_create_gateway`` is the one factory holding every Ray option of the singleton.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from typing import Any

import ray

from v6ray.actors.loops import RestartPolicy, Supervisor, call_after_construction
from v6ray.constants import GATEWAY_ACTOR, NAMESPACE, QUEUE_ACTOR
from v6ray.gateway.breaker import CircuitBreaker
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.connection import STOPPED, STOPPING, Connection
from v6ray.gateway.drain import Drainer, resolve_queue
from v6ray.gateway.handlers.base import ib_request_maps
from v6ray.gateway.permits import PermitGate
from v6ray.observability.gateway import GatewayPublisher
from v6ray.pacing.pacer import Pacer, PacingLimits
from v6ray.service.process_priority import run_at_normal_priority
from v6ray.storage import location

log = logging.getLogger(__name__)

# Supervised task names, as `v6ray status` shows them (underscores read as spaces).
CLAIM_LOOP, WATCHDOG = "claim_loop", "connection_watchdog"
METRICS = "metrics_publisher"  # the gateway's stats → Ray metrics, every second
SELF_START = "self_start"  # start after (re)creation, retried until it succeeds once
SELF_START_BACKOFF = RestartPolicy(base=0.2, cap=10.0)


class IBGateway:
    def __init__(
        self,
        config: GatewayConfig,
        data_dir: str,
        queue_name: str = QUEUE_ACTOR,
        namespace: str = NAMESPACE,
        actor_name: str | None = None,
    ) -> None:
        self.config = config
        self.actor_name = actor_name
        self.data_dir = location.normalize(data_dir)
        self.queue_name = queue_name
        self.namespace = namespace
        # One id per incarnation: leases of a killed predecessor expire on their own and
        # can never be completed by mistake by this one.
        self.worker_id = f"{config.worker_id}-{uuid.uuid4().hex[:8]}"
        self.started_at = time.time()
        self._supervisor = Supervisor()
        self._starter = Supervisor()  # only SELF_START: not one of the loops stats() shows
        self._stopped: dict[str, Any] | None = None
        self._state_override: str | None = None
        self._parts: tuple[Connection, Drainer] | None = None
        self._starting = False
        self._start_error: str | None = None
        self._install_sigterm()
        if actor_name:  # a deployed actor (not a plain object in a unit test)
            run_at_normal_priority("IBGateway")
        self._self_start()

    def __repr__(self) -> str:  # the name the Ray dashboard shows (Ray takes it once)
        cfg = self.config
        return f"IBGateway[IB {cfg.host}:{cfg.port} client {cfg.client_id}]"

    # --- lifecycle ----------------------------------------------------------------------
    def _self_start(self) -> None:
        """Start on (re)creation: a restarted actor resumes without anyone calling start.

        ``__init__`` cannot await: it queues a call of ``resume`` on the actor's own
        handle, which runs once the actor is up (``actors.loops.call_after_construction``).
        """
        if self.actor_name:
            call_after_construction("resume")

    async def resume(self) -> None:
        """Keep calling ``start`` until it has run once (``_self_start`` calls this).

        Until then start fails (the queue not up yet, say) and is retried with backoff: a
        gateway that gave up would sit idle unnoticed. Under a supervisor of its own, so
        the ``tasks`` of ``stats()`` show only the gateway's loops.
        """

        async def start_once() -> None:
            if self._stopped is None:
                await self.start()

        self._starter.ensure_running(SELF_START, start_once, policy=SELF_START_BACKOFF)

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)

            def on_sigterm(signum: int, frame: Any) -> None:
                loop = getattr(self, "_loop", None)
                if loop is not None and loop.is_running():
                    # A one-shot call, not a loop: shutdown stops the supervisors, so it
                    # cannot run as one of their tasks.
                    loop.call_soon_threadsafe(
                        lambda: loop.create_task(self.shutdown(self.config.shutdown_timeout))
                    )
                elif callable(previous):
                    previous(signum, frame)

            signal.signal(signal.SIGTERM, on_sigterm)
        except (ValueError, OSError):  # not the main thread in this Ray worker: skip
            pass

    async def start(self) -> dict[str, Any]:
        """Begin connecting and draining (idempotent; a start that failed can be retried)."""
        if self._starting or self._stopped is not None:
            return {"started": False, "state": self._state()}
        self._starting = True  # before any await: a second start() must see it
        try:
            connection, drainer = await self._build()
        except Exception as exc:
            self._starting = False
            self._start_error = f"start failed: {exc!r}"[:300]
            log.error("gateway start failed: %s", exc)
            raise
        self._start_error = None
        if self._stopped is not None:  # shut down while starting: nothing to run
            return {"started": False, "state": self._state()}
        self._parts = (connection, drainer)
        self._supervisor.start(WATCHDOG, connection.run)
        self._supervisor.start(CLAIM_LOOP, drainer.run)
        self._supervisor.start(METRICS, GatewayPublisher(self.stats).run)
        return {"started": True, "state": self._state()}

    async def _build(self) -> tuple[Connection, Drainer]:
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        breaker = CircuitBreaker(cfg.breaker_failures, cfg.breaker_open_seconds)
        pacer = Pacer(PacingLimits.from_config(cfg))
        gate = PermitGate(pacer, enabled=cfg.pacing)
        holder: dict[str, Drainer] = {}
        connection = Connection(
            cfg, breaker, gate,
            on_pause=lambda reason: holder["d"].pause(reason) if "d" in holder else None,
        )
        queue = await asyncio.get_running_loop().run_in_executor(
            None, resolve_queue, self.queue_name, self.namespace
        )
        drainer = Drainer(cfg, self.data_dir, queue, connection, pacer, gate, breaker,
                          self.worker_id)
        holder["d"] = drainer
        await self._free_predecessor_leases(queue)
        self._pacer, self._gate, self._breaker = pacer, gate, breaker
        return connection, drainer

    async def _free_predecessor_leases(self, queue: Any) -> None:
        """This actor is the only gateway: leases held by an earlier incarnation (killed,
        restarted by Ray) can never be completed, so end them now rather than after the
        queue's lease timeout. Best effort: otherwise they expire on their own."""
        try:
            freed = await queue.expire_predecessor_leases.remote(
                f"{self.config.worker_id}-", self.worker_id
            )
        except Exception as exc:  # the queue restarting: leases still expire by timeout
            log.warning("could not free a predecessor's leases: %s", exc)
            return
        if freed:
            log.info("freed %d request(s) leased by a previous gateway incarnation", freed)

    async def shutdown(self, timeout: float = 30.0) -> dict[str, Any]:
        """Graceful stop: no more claims, finish or release in-flight, flush, disconnect."""
        if self._stopped is not None:
            return self._stopped
        if self._parts is None:
            self._stopped = {"state": STOPPED, "released": 0}
            await self._starter.stop()
            return self._stopped
        await self._starter.stop()
        connection, drainer = self._parts
        self._state_override = STOPPING
        outcome = await drainer.stop(timeout)
        connection.stop()
        connection.disconnect()
        await self._supervisor.stop()
        self._state_override = STOPPED
        self._stopped = {"state": STOPPED, **outcome, **dict(drainer.counters)}
        return self._stopped

    async def ping(self) -> str:
        return "pong"

    # --- stats --------------------------------------------------------------------------
    def _state(self) -> str:
        if self._state_override:
            return self._state_override
        if self._parts is None:
            return "stopped" if self._stopped else "connecting"
        return self._parts[0].state

    async def stats(self) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {
            "state": self._state(),
            "circuit": "closed",
            "host": cfg.host,
            "port": cfg.port,
            "client_id": cfg.client_id,
            "worker_id": self.worker_id,
            "time_scale": cfg.time_scale,
            "pacing_enabled": cfg.pacing,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "in_flight": 0,
            "lines_in_use": 0,
            "line_budget": cfg.line_budget,
            "pacing": {},
            "ib_errors": {},
            "last_error": self._start_error,
            "paused": False,
            # Supervised loops: state, restarts, last error of each (status shows them).
            "tasks": self._supervisor.stats(),
            "counters": {"completed": 0, "failed": 0, "retried": 0, "released": 0,
                         "reconnects": 0},
        }
        if self._parts is None:
            return out
        connection, drainer = self._parts
        budgets = self._pacer.budgets()
        out.update(
            circuit=str(self._breaker.state),
            in_flight=len(drainer.in_flight),
            lines_in_use=budgets["lines_in_use"],
            pacing={**budgets, "waiting": self._gate.waiting(),
                    "timer_lateness": self._gate.timer_lateness(),
                    "unused_seconds": {k: round(v, 3)
                                       for k, v in self._gate.unused_seconds.items()}},
            ib_errors={str(code): n for code, n in sorted(connection.ib_errors.items())},
            ib_request_maps=ib_request_maps(connection.ib),
            last_error=connection.last_error or drainer.last_error,
            paused=connection.paused,
            counters={
                "completed": drainer.counters["completed"],
                "failed": drainer.counters["failed"],
                "retried": drainer.counters["retried"],
                "released": drainer.counters["released"],
                "reconnects": connection.reconnects,
                "connects": connection.connects,
                "writer_commits": drainer.writer.commits,
                "rows_written": drainer.writer.rows_written,
                "writer_conflicts": drainer.writer.conflicts,
                "writer_commits_by_node": dict(drainer.writer.commits_by_node),
            },
        )
        return out


def get_or_create_gateway(
    config: GatewayConfig,
    data_dir: str,
    *,
    name: str = GATEWAY_ACTOR,
    namespace: str = NAMESPACE,
    queue_name: str = QUEUE_ACTOR,
    node_resource: str | None = None,
) -> ray.actor.ActorHandle:
    """The named, detached gateway actor; an existing one is returned as is.

    ``node_resource`` pins it to a node advertising that custom resource (cluster.yaml's
    ``constants.GATEWAY_NODE_RESOURCE``), e.g. the machine allowed to reach IB.
    """
    options: dict[str, Any] = dict(
        name=name,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        # A method retried after a crash could run twice; every method is cheap to re-ask.
        max_task_retries=0,
        num_cpus=0,
        max_concurrency=1000,
    )
    if node_resource:
        options["resources"] = {node_resource: 0.001}
    # The actor starts itself (also after a restart); see IBGateway._self_start.
    return ray.remote(IBGateway).options(**options).remote(
        config, location.normalize(data_dir), queue_name, namespace, name
    )
