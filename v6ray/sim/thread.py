"""SimulatorThread: a Simulator on its own event loop in a daemon thread.

For synchronous tests and benchmarks: ``with SimulatorThread(cfg) as sim: sim.port``.
Every method marshals onto the simulator's loop and waits for the result.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from v6ray.sim.config import SimConfig
from v6ray.sim.server import Simulator

_CALL_TIMEOUT = 30.0


class SimulatorThread:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sim: Simulator | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="ib-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_CALL_TIMEOUT):
            raise TimeoutError("simulator did not start")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._sim = Simulator(self.config)
            loop.run_until_complete(self._sim.start())
        except BaseException as exc:  # reported to the starting thread
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._sim.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_CALL_TIMEOUT)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._loop is None or self._sim is None:
            raise RuntimeError("simulator thread not started")

        async def invoke() -> Any:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(_CALL_TIMEOUT)

    # --- the Simulator's API, thread-safe ----------------------------------------------
    @property
    def port(self) -> int:
        assert self._sim is not None, "simulator thread not started"
        return self._sim.port

    @property
    def simulator(self) -> Simulator:
        """The Simulator itself; touch it only through this class's methods from other threads."""
        assert self._sim is not None, "simulator thread not started"
        return self._sim

    def stats(self) -> dict:
        return self._call(lambda: self.simulator.stats())

    def drop_connections(self) -> int:
        return self._call(lambda: self.simulator.drop_connections())

    def refuse_connections(self, seconds: float) -> None:
        self._call(lambda: self.simulator.refuse_connections(seconds))

    def connectivity_lost(self) -> None:
        self._call(lambda: self.simulator.connectivity_lost())

    def connectivity_restored(self, data_lost: bool = False) -> None:
        self._call(lambda: self.simulator.connectivity_restored(data_lost))

    def set_response_delay(self, seconds: float) -> None:
        self._call(lambda: self.simulator.set_response_delay(seconds))

    def inject_error(self, kind: str, code: int, message: str, count: int = 1,
                     symbol: str | None = None) -> None:
        self._call(lambda: self.simulator.inject_error(kind, code, message, count, symbol))

    def stall(self, seconds: float) -> None:
        """Keep the simulator's event loop busy for ``seconds`` (as a long handler would);
        returns at once. Messages arriving meanwhile are still stamped at arrival."""
        if self._loop is None:
            raise RuntimeError("simulator thread not started")
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    def nightly_restart(self, down_seconds: float) -> None:
        self._call(lambda: self.simulator.nightly_restart(down_seconds))
