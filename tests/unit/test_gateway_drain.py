"""The claim loop with a fake queue and connection: queue errors do not end it."""

from __future__ import annotations

import asyncio

from v6ray.gateway.breaker import CircuitBreaker
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.drain import Drainer
from v6ray.gateway.permits import PermitGate
from v6ray.pacing.pacer import Pacer, PacingLimits
from v6ray.requests.model import new_request


class FakeConnection:
    def __init__(self) -> None:
        self.ready = True

    async def wait_ready(self, timeout: float) -> bool:
        await asyncio.sleep(0.01)
        return self.ready


class Remote:
    def __init__(self, func) -> None:
        self.func = func
        self.calls: list[tuple] = []

    def remote(self, *args):
        self.calls.append(args)

        async def answer():
            return self.func(*args)

        return answer()


class DropsIBDuringTheClaimQueue:
    """The claim returns one request just as IB goes away; the release then fails once
    (the queue restarting), later releases work."""

    def __init__(self, connection: FakeConnection) -> None:
        self.request = new_request("futures_snapshot", "ES")
        self.releases_failed = 0

        def claim_wait(n, worker_id, admission, wait_seconds):
            if len(self.claim_wait.calls) == 1:
                connection.ready = False
                return [self.request], 0
            return [], 0

        def release(ids, worker_id):
            if not self.releases_failed:
                self.releases_failed += 1
                raise RuntimeError("queue actor restarting")
            return len(ids)

        self.claim_wait = Remote(claim_wait)
        self.release = Remote(release)
        self.renew = Remote(lambda ids, worker_id: len(ids))


def make_drainer(tmp_path, queue, connection) -> Drainer:
    config = GatewayConfig(idle_max=0.05, lease_renew_seconds=60.0)
    pacer = Pacer(PacingLimits.from_config(config))
    return Drainer(config, str(tmp_path), queue, connection, pacer, PermitGate(pacer),
                   CircuitBreaker(5, 1.0), "gateway-17-test")


def test_a_failed_release_after_a_claim_does_not_end_the_claim_loop(tmp_path):
    async def scenario():
        connection = FakeConnection()
        queue = DropsIBDuringTheClaimQueue(connection)
        drainer = make_drainer(tmp_path, queue, connection)
        loop = asyncio.get_running_loop().create_task(drainer.run())
        for _ in range(100):
            if queue.release.calls:
                break
            await asyncio.sleep(0.01)
        assert queue.release.calls == [([queue.request.request_id], "gateway-17-test")]
        await asyncio.sleep(0.1)
        assert not loop.done(), loop.exception()
        assert "release failed" in drainer.last_error
        assert "queue actor restarting" in drainer.last_error
        assert drainer.counters["released"] == 0  # its lease expires instead
        # IB back: the loop claims again.
        claims = len(queue.claim_wait.calls)
        connection.ready = True
        for _ in range(100):
            if len(queue.claim_wait.calls) > claims:
                break
            await asyncio.sleep(0.01)
        assert len(queue.claim_wait.calls) > claims
        await drainer.stop(timeout=1.0)
        await asyncio.wait_for(loop, 2.0)

    asyncio.run(scenario())


def test_a_retried_snapshot_replaces_its_earlier_rows_and_a_first_attempt_does_not():
    from dataclasses import replace

    from v6ray.gateway.drain import _earlier_rows_to_replace

    chain = new_request("option_chain", "SPY")
    assert _earlier_rows_to_replace(replace(chain, attempts=1), "option_snapshots") is None
    retried = replace(chain, attempts=2)
    assert _earlier_rows_to_replace(retried, "option_snapshots") == chain.request_id
    # A bar belongs to its series, not its request: a retry's bars merge as any load's do.
    bars = replace(new_request("market_bars", "SPY", parameters={"duration": "1 D"}), attempts=3)
    assert _earlier_rows_to_replace(bars, "market_bars") is None
