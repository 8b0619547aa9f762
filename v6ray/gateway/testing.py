"""A harness for gateway tests and benchmarks: simulator + queue + gateway in one namespace.

    with GatewayHarness(data_dir, namespace, time_scale=0.01) as h:
        ids = h.submit_many([{"request_type": "futures_snapshot", "symbol": "ES"}])
        finals = h.wait_all(ids, timeout=60)

Ray must already be initialised (the tests' ``ray_cluster`` fixture, or the bench).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import polars as pl
import ray
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from v6ray.gateway.actor import get_or_create_gateway
from v6ray.gateway.config import GatewayConfig
from v6ray.requests.model import IBRequest
from v6ray.storage.schemas import table_path


class GatewayHarness:
    def __init__(
        self,
        data_dir: str,
        namespace: str,
        *,
        time_scale: float = 0.01,
        sim_limits: bool = True,
        sim_overrides: dict[str, Any] | None = None,
        gateway_overrides: dict[str, Any] | None = None,
        queue_overrides: dict[str, Any] | None = None,
        start_gateway: bool = True,
        sim_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.namespace = namespace
        self.time_scale = time_scale
        self._sim_config = dict(time_scale=time_scale, limits=sim_limits, seed=7,
                                **(sim_overrides or {}))
        self._gateway_overrides = gateway_overrides or {}
        self._queue_overrides = {"lease_seconds": 8.0, "backoff_base": 0.2,
                                 "backoff_cap": 2.0, **(queue_overrides or {})}
        self._start_gateway = start_gateway
        # A simulator already running elsewhere (its own process, as benchmarks want it):
        # then the harness starts none and sim_overrides/sim_limits do not apply.
        self._sim_port = sim_port
        self.sim: Any = None
        self.queue: Any = None
        self.gateway: Any = None
        self.gateway_config: GatewayConfig | None = None

    def __enter__(self) -> GatewayHarness:
        from v6ray.queue.actor import get_or_create_queue
        from v6ray.queue.config import QueueConfig
        from v6ray.sim import SimConfig, SimulatorThread

        if self._sim_port is None:
            self.sim = SimulatorThread(SimConfig(**self._sim_config)).start()
        port = self._sim_port if self._sim_port is not None else self.sim.port
        self.queue = get_or_create_queue(
            self.data_dir, QueueConfig(**self._queue_overrides), namespace=self.namespace
        )
        ray.get(self.queue.ping.remote(), timeout=60)
        self.gateway_config = GatewayConfig(
            port=port, time_scale=self.time_scale,
            # 0.2 s of window margin: at time_scale 0.01 a 6-s window on a loaded 2-core CI
            # box sees receipt jitter above the 0.12 s default (which is sized for 1.0).
            **{"window_margin_seconds": 0.2, "lease_renew_seconds": 2.0, "request_timeout": 10.0,
               "historical_timeout": 20.0, "reconnect_cap": 1.0,
               "breaker_open_seconds": 1.0, **self._gateway_overrides},
        )
        if self._start_gateway:
            self.start_gateway()
        return self

    def start_gateway(self) -> Any:
        self.gateway = get_or_create_gateway(
            self.gateway_config, self.data_dir, namespace=self.namespace
        )
        ray.get(self.gateway.ping.remote(), timeout=60)
        return self.gateway

    def __exit__(self, *exc: object) -> None:
        if self.gateway is not None:
            with contextlib.suppress(Exception):
                ray.get(self.gateway.shutdown.remote(5), timeout=20)
            ray.kill(self.gateway, no_restart=True)
        if self.queue is not None:
            ray.kill(self.queue, no_restart=True)
        if self.sim is not None:
            self.sim.stop()

    # --- requests -----------------------------------------------------------------------
    def submit_many(self, items: Sequence[dict[str, Any]]) -> list[str]:
        return ray.get(self.queue.submit_many.remote(list(items)), timeout=60)

    def submit(self, request_type: str, symbol: str, **kwargs: Any) -> str:
        return ray.get(self.queue.submit.remote(request_type, symbol, **kwargs), timeout=60)

    def wait_all(self, request_ids: Sequence[str], timeout: float) -> list[IBRequest]:
        """Every request's final state; raises TimeoutError naming the stragglers."""
        deadline = time.monotonic() + timeout
        finals: dict[str, IBRequest] = {}
        pending = list(dict.fromkeys(request_ids))
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                states = ray.get([self.queue.get.remote(r) for r in pending[:5]])
                raise TimeoutError(f"{len(pending)} requests not final, e.g. {states}")
            # One call for all of them: a call per request cost the queue more CPU than
            # the requests themselves in the overhead bench.
            try:
                states = ray.get(self.queue.wait_many.remote(pending, min(left, 5.0)))
            except Exception:  # the queue restarting (fault tests): ask again shortly
                time.sleep(0.2)
                continue
            for rid, state in zip(pending, states, strict=True):
                if state is not None:
                    finals[rid] = state
            pending = [r for r in pending if r not in finals]
        return [finals[r] for r in request_ids]

    def gateway_stats(self) -> dict[str, Any]:
        return ray.get(self.gateway.stats.remote(), timeout=30)

    def read(self, table: str) -> pl.DataFrame:
        try:
            return pl.from_arrow(DeltaTable(table_path(self.data_dir, table)).to_pyarrow_table())
        except TableNotFoundError:
            return pl.DataFrame()
