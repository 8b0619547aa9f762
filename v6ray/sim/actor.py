"""The simulator as a detached Ray actor (``v6ray up --simulate``).

``SimulatorActor`` is a plain class; ``get_or_create_simulator`` makes it an async
Ray actor with every singleton option in one place. The TCP server runs on the
actor's own event loop, bound to loopback by the config.
"""

from __future__ import annotations

from v6ray.constants import NAMESPACE, SIMULATOR_ACTOR
from v6ray.service.process_priority import run_at_normal_priority
from v6ray.sim.config import SimConfig
from v6ray.sim.server import Simulator


class SimulatorActor:
    def __init__(self, config: SimConfig) -> None:
        # It stands in for IB Gateway, a process of its own at normal priority: reading
        # a busy machine's messages late would bunch them as no real gateway does.
        run_at_normal_priority("IBSimulator")
        self._config = config
        self._sim: Simulator | None = None

    async def _running(self) -> Simulator:
        # Started lazily on the actor's loop: Ray async actors have no async __init__.
        if self._sim is None:
            sim = Simulator(self._config)
            await sim.start()
            self._sim = sim
        return self._sim

    async def port(self) -> int:
        return (await self._running()).port

    async def stats(self) -> dict:
        return (await self._running()).stats()

    async def stop(self) -> None:
        if self._sim is not None:
            await self._sim.stop()
            self._sim = None

    async def drop_connections(self) -> int:
        return (await self._running()).drop_connections()

    async def refuse_connections(self, seconds: float) -> None:
        (await self._running()).refuse_connections(seconds)

    async def connectivity_lost(self) -> None:
        (await self._running()).connectivity_lost()

    async def connectivity_restored(self, data_lost: bool = False) -> None:
        (await self._running()).connectivity_restored(data_lost)

    async def set_response_delay(self, seconds: float) -> None:
        (await self._running()).set_response_delay(seconds)

    async def inject_error(self, kind: str, code: int, message: str, count: int = 1,
                           symbol: str | None = None) -> None:
        (await self._running()).inject_error(kind, code, message, count, symbol)

    async def nightly_restart(self, down_seconds: float) -> None:
        (await self._running()).nightly_restart(down_seconds)


def get_or_create_simulator(config: SimConfig, *, name: str = SIMULATOR_ACTOR,
                            namespace: str = NAMESPACE):
    """The named, detached simulator actor (created if missing); its server is started.

    Pinned to this node (the one running `up`), as a real IB Gateway runs on one fixed
    machine: on a cluster, a simulator Ray placed on a worker node would move, and take a
    new port, whenever that node is lost.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    handle = ray.remote(SimulatorActor).options(
        name=name, namespace=namespace, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_restarts=-1, max_concurrency=1000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(config)
    ray.get(handle.port.remote())  # start listening before anyone is told the port
    return handle
