"""The gateway's connection lifecycle (issue 4), seen from outside: a client id held by
another session (326), IB's nightly restart, the circuit breaker not hammering a dead
gateway, and a graceful shutdown with requests in flight.

Real Ray, the real IBGateway actor, the simulator on an ephemeral loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import ray
from ib_async import IB, util
from ib_async.ib import StartupFetchNONE

from tests.helpers import wait_for
from v6ray.constants import GATEWAY_ACTOR
from v6ray.gateway.testing import GatewayHarness
from v6ray.requests.model import IBRequest, Status
from v6ray.storage.schemas import TABLES

pytestmark = pytest.mark.timeout(120)

BASE = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
STOCKS = ["SPY", "QQQ", "IWM", "AAPL"]


def pause(seconds: float) -> None:
    """Let ib_async's loop (the test's own IB) run: sockets close, messages are read."""
    util.getLoop().run_until_complete(asyncio.sleep(seconds))


@contextlib.contextmanager
def client_id_holder(port: int, client_id: int) -> Iterator[Callable[[], None]]:
    """Another session connected with ``client_id``; call the yielded function to leave."""
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=client_id, readonly=True, timeout=10,
               fetchFields=StartupFetchNONE)

    def leave() -> None:
        if ib.isConnected():
            ib.disconnect()
            pause(0.1)  # the close itself runs on the loop

    try:
        yield leave
    finally:
        leave()


def states(h: GatewayHarness, ids: list[str]) -> list[IBRequest]:
    return ray.get([h.queue.get.remote(r) for r in ids], timeout=30)


def bars_workload(n: int) -> list[dict]:
    return [{"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
             "parameters": {"duration": "2 D", "bar_size": "1 hour",
                            "end": (BASE + timedelta(days=i + 1)).isoformat()}}
            for i in range(n)]


def mixed_workload() -> list[dict]:
    items = bars_workload(12)
    items += [{"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
               "parameters": {"duration": "1800 S", "bar_size": "5 secs", "use_rth": False,
                              "end": (BASE + timedelta(days=7 * (i // 4))).isoformat()}}
              for i in range(8)]
    items += [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ", "RTY")]
    items += [{"request_type": "option_chain", "symbol": s,
               "parameters": {"dte": 20, "strikes": 3}} for s in ("SPY", "QQQ")]
    items += [{"request_type": "position_update", "symbol": "*"}]
    return items


def assert_no_duplicate_rows(h: GatewayHarness, tables: tuple[str, ...]) -> None:
    for name in tables:
        frame = h.read(name)
        assert frame.height > 0, f"{name} is empty"
        keys = list(TABLES[name].key_columns)
        assert frame.height == frame.select(keys).unique().height, f"duplicates in {name}"


def assert_rows_committed(h: GatewayHarness, finals: list[IBRequest]) -> None:
    """Each SUCCESS request's rows are in its table under its id (the workloads here never
    fetch the same bar twice, so no later load can own a request's bars)."""
    for final in finals:
        assert final.status is Status.SUCCESS
        table, rows = final.result_data["table"], final.result_data["rows"]
        assert rows > 0
        mine = h.read(table).filter(pl.col("request_id") == final.request_id)
        assert mine.height == rows, (final.request_type.value, final.symbol)


def fresh_gateway(h: GatewayHarness) -> None:
    """Kill the (stopped) gateway actor and start a new incarnation under the same name."""
    ray.kill(h.gateway, no_restart=True)

    def name_free() -> bool:
        try:
            ray.get_actor(GATEWAY_ACTOR, namespace=h.namespace)
        except ValueError:
            return True
        return False

    wait_for(name_free, 30, "the old gateway actor to be gone")
    h.start_gateway()


# --- 326: client id in use ------------------------------------------------------------------
def test_client_id_in_use_waits_says_so_then_connects(ray_namespace, data_dir):
    overrides = {"connect_timeout": 1.0, "client_id_retry_seconds": 0.2,
                 "client_id_max_retries": 3, "breaker_failures": 50}
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01, start_gateway=False,
                        gateway_overrides=overrides) as h:
        cfg = h.gateway_config
        ids = h.submit_many([{"request_type": "futures_snapshot", "symbol": s}
                             for s in ("ES", "NQ")] +
                            [{"request_type": "position_update", "symbol": "*"}])
        with client_id_holder(h.sim.port, cfg.client_id) as leave:
            h.start_gateway()
            # While it waits and retries: IB's own words, code 326, are in the status.
            wait_for(lambda: "326" in (h.gateway_stats()["last_error"] or ""), 20,
                     "a 326 in the gateway's status")
            first = h.gateway_stats()
            assert first["state"] != "connected"
            assert "client id" in first["last_error"].lower()
            # After client_id_max_retries tries it says plainly what is wrong, and keeps
            # saying it (no flicker back to the raw message on each further try).
            wait_for(lambda: "in use by another session" in
                     (h.gateway_stats()["last_error"] or ""), 20, "the give-up message")
            refused_at_give_up = h.sim.stats()["connections"]["refused"]
            assert refused_at_give_up >= cfg.client_id_max_retries
            seen = set()
            window = 1.5
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                stats = h.gateway_stats()
                seen.add(stats["last_error"])
                assert stats["state"] != "connected"
                time.sleep(0.05)
            assert len(seen) == 1, seen
            [message] = seen
            assert f"client id {cfg.client_id}" in message and "326" in message
            # It keeps retrying every client_id_retry_seconds (not every connect_timeout:
            # that would be at most 2 tries here) and touches no request meanwhile.
            tries = h.sim.stats()["connections"]["refused"] - refused_at_give_up
            assert 3 <= tries <= window / cfg.client_id_retry_seconds + 1, tries
            assert {r.status for r in states(h, ids)} == {Status.PENDING}
            assert {r.attempts for r in states(h, ids)} == {0}
            leave()
            finals = h.wait_all(ids, timeout=30)
        assert_rows_committed(h, finals)
        assert [f.attempts for f in finals] == [1] * len(finals)
        stats = h.gateway_stats()
        assert stats["state"] == "connected" and stats["counters"]["connects"] == 1
        assert stats["ib_errors"]["326"] >= cfg.client_id_max_retries


# --- nightly restart --------------------------------------------------------------------------
def test_nightly_restart_mid_backlog_reconnects_and_loses_nothing(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        gateway_overrides={"reconnect_base": 0.1, "reconnect_cap": 0.5}) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)
        h.sim.set_response_delay(0.4)  # a backlog still being worked when IB goes down
        ids = h.submit_many(mixed_workload())
        wait_for(lambda: h.gateway_stats()["in_flight"] >= 3, 30, "requests in flight")
        total_before = h.sim.stats()["connections"]["total"]
        h.sim.nightly_restart(1.5)
        wait_for(lambda: h.gateway_stats()["state"] != "connected", 10, "the drop to be seen")
        h.sim.set_response_delay(0.0)
        finals = h.wait_all(ids, timeout=90)
        assert_rows_committed(h, finals)
        assert_no_duplicate_rows(
            h, ("market_bars", "option_snapshots", "futures_snapshots", "positions"))
        # Requests cut off by the restart were released, not failed: one attempt each.
        assert [f.attempts for f in finals] == [1] * len(finals)
        assert all(f.error_message is None for f in finals)
        stats = h.gateway_stats()
        assert stats["state"] == "connected"
        assert stats["counters"]["reconnects"] >= 1
        assert stats["counters"]["released"] >= 1
        assert stats["counters"]["failed"] == stats["counters"]["retried"] == 0
        sim = h.sim.stats()
        assert sim["connections"]["total"] > total_before and sim["connections"]["active"] == 1
        assert sim["violations"] == {}


# --- circuit breaker ------------------------------------------------------------------------
def test_circuit_breaker_opens_does_not_hammer_and_recovers(ray_namespace, data_dir):
    # Reconnect backoff alone would retry every 0.05 s here; the breaker must hold it to one
    # probe per breaker_open_seconds once breaker_failures tries in a row have failed.
    failures, open_seconds, retry = 3, 1.0, 0.05
    overrides = {"connect_timeout": 1.0, "breaker_failures": failures,
                 "breaker_open_seconds": open_seconds, "reconnect_base": retry,
                 "reconnect_cap": retry, "client_id_retry_seconds": retry,
                 "client_id_max_retries": 1000}
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01, start_gateway=False,
                        gateway_overrides=overrides) as h:
        ids = h.submit_many(bars_workload(4))
        # A refused connect (ECONNREFUSED) never reaches the simulator, so it cannot be
        # counted there; a session that holds our client id turns every try away with 326
        # *after* accepting it, so each try is one ``connections.refused``.
        with client_id_holder(h.sim.port, h.gateway_config.client_id) as leave:
            h.start_gateway()
            wait_for(lambda: h.gateway_stats()["circuit"] == "open", 20, "the circuit to open")
            assert h.gateway_stats()["state"] != "connected"
            start = h.sim.stats()["connections"]["refused"]
            window = 4.0
            circuits = set()
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                circuits.add(h.gateway_stats()["circuit"])
                time.sleep(0.05)
            tries = h.sim.stats()["connections"]["refused"] - start
            # Open: at most one probe per open period (plus the one in progress at the
            # window's edge). Without the breaker it would be window / retry = 80.
            assert 1 <= tries <= window / open_seconds + 1, tries
            assert "open" in circuits and circuits <= {"open", "half_open"}, circuits
            assert {r.status for r in states(h, ids)} == {Status.PENDING}
            leave()
            wait_for(lambda: h.gateway_stats()["circuit"] == "closed"
                     and h.gateway_stats()["state"] == "connected", 10,
                     "the circuit to close after the half-open probe succeeds")
        finals = h.wait_all(ids, timeout=30)
        assert_rows_committed(h, finals)


# --- graceful shutdown ----------------------------------------------------------------------
def test_graceful_shutdown_finishes_or_releases_in_flight(ray_namespace, data_dir):
    limit = 3
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        gateway_overrides={"max_in_flight": limit, "claim_batch": limit}) as h:
        h.sim.set_response_delay(1.0)  # slow answers: requests are in flight when we stop
        ids = h.submit_many(bars_workload(10))

        def in_flight_now() -> bool:
            return h.gateway_stats()["in_flight"] == limit

        # 1) Enough time: in-flight requests finish, their rows are committed; the rest
        #    of the queue is not touched.
        wait_for(in_flight_now, 30, "requests in flight")
        outcome = ray.get(h.gateway.shutdown.remote(8.0), timeout=30)
        assert outcome["state"] == "stopped" and outcome["cancelled"] == 0
        after = states(h, ids)
        done = [r for r in after if r.status is Status.SUCCESS]
        assert len(done) == outcome["completed"] >= limit
        assert_rows_committed(h, done)
        rest = [r for r in after if r.status is not Status.SUCCESS]
        assert rest and {r.status for r in rest} == {Status.PENDING}
        assert {r.attempts for r in rest} == {0}
        stats = h.gateway_stats()
        assert stats["state"] == "stopped"
        wait_for(lambda: h.sim.stats()["connections"]["active"] == 0, 5, "the disconnect")
        time.sleep(0.5)  # a stopped gateway claims nothing more
        assert [r.status for r in states(h, ids)] == [r.status for r in after]

        # 2) Too little time: in-flight requests are released, PENDING again, no attempt
        #    counted, nothing FAILED.
        h.sim.set_response_delay(5.0)  # surely still in flight when the 0.3 s run out
        fresh_gateway(h)
        wait_for(in_flight_now, 30, "requests in flight (second gateway)")
        outcome = ray.get(h.gateway.shutdown.remote(0.3), timeout=30)
        assert outcome["cancelled"] == limit and outcome["released"] == limit
        again = states(h, ids)
        assert not [r for r in again if r.status not in (Status.SUCCESS, Status.PENDING)]
        assert sum(r.status is Status.SUCCESS for r in again) == len(done)
        assert {r.attempts for r in again if r.status is Status.PENDING} == {0}
        assert h.gateway_stats()["state"] == "stopped"
        wait_for(lambda: h.sim.stats()["connections"]["active"] == 0, 5, "the disconnect")

        # 3) A new gateway finishes the rest.
        h.sim.set_response_delay(0.0)
        fresh_gateway(h)
        finals = h.wait_all(ids, timeout=60)
        assert_rows_committed(h, finals)
        assert_no_duplicate_rows(h, ("market_bars",))
        assert [f.attempts for f in finals] == [1] * len(finals)
