"""Connection's handling of 326 (client id in use), without a socket: ib_async's connect is
replaced by a coroutine that, like ib_async against a gateway that refused us, never ends."""

from __future__ import annotations

import asyncio
import time

from v6ray.gateway.breaker import CircuitBreaker
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.connection import DISCONNECTED, Connection
from v6ray.gateway.permits import PermitGate
from v6ray.pacing.pacer import Pacer, PacingLimits

IN_USE = "Unable to connect as the client id is already in use."


def refusing_connection(max_retries: int) -> Connection:
    config = GatewayConfig(connect_timeout=30.0, client_id_max_retries=max_retries)
    gate = PermitGate(Pacer(PacingLimits.from_config(config)))
    connection = Connection(config, CircuitBreaker(failure_threshold=100), gate)

    async def connect_refused_by_326(*args, **kwargs):
        # TWS sends 326 and closes the socket; ib_async keeps waiting for the API start.
        asyncio.get_running_loop().call_soon(connection._on_error, -1, 326, IN_USE)
        await asyncio.sleep(3600)

    connection.ib.connectAsync = connect_refused_by_326
    return connection


def test_a_326_ends_the_connect_try_at_once():
    async def scenario() -> tuple[bool, float, Connection]:
        connection = refusing_connection(max_retries=5)
        started = time.monotonic()
        ok = await asyncio.wait_for(connection._connect_once(), 10)
        return ok, time.monotonic() - started, connection

    ok, elapsed, connection = asyncio.run(scenario())
    assert not ok and elapsed < 5.0  # not connect_timeout (30 s)
    assert connection.state == DISCONNECTED
    assert connection.last_error == f"IB error 326: {IN_USE}"
    assert connection.breaker.consecutive_failures == 1


def test_after_max_retries_the_plain_message_stays_up():
    async def scenario() -> list[str | None]:
        connection = refusing_connection(max_retries=2)
        seen = []
        for _ in range(4):
            assert not await asyncio.wait_for(connection._connect_once(), 10)
            seen.append(connection.last_error)
        # A further 326 mid-try must not swap the give-up message for IB's raw text.
        connection._on_error(-1, 326, IN_USE)
        seen.append(connection.last_error)
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == f"IB error 326: {IN_USE}"
    give_up = seen[1]
    assert "client id 17 is in use by another session" in give_up and "still retrying" in give_up
    assert seen[2:] == [give_up] * 3
