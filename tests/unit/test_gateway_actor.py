"""IBGateway as a plain object (no Ray): a start that failed can be retried."""

from __future__ import annotations

import asyncio

import pytest

from v6ray.gateway import actor
from v6ray.gateway.actor import CLAIM_LOOP, METRICS, WATCHDOG, IBGateway
from v6ray.gateway.config import GatewayConfig
from v6ray.service.cluster import free_port


class Remote:
    def __init__(self, answer) -> None:
        self.answer = answer

    def remote(self, *args):
        async def reply():
            return self.answer

        return reply()


class IdleQueue:
    expire_predecessor_leases = Remote(0)


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    # The actor installs a SIGTERM handler in its worker's main thread; not in pytest's.
    monkeypatch.setattr(IBGateway, "_install_sigterm", lambda self: None)
    # Nothing listens on this loopback port: the watchdog's connects fail at once.
    config = GatewayConfig(port=free_port(), connect_timeout=0.5)
    return IBGateway(config, str(tmp_path))


def test_a_failed_start_can_be_retried_and_says_why_meanwhile(gateway, monkeypatch):
    answers: list[object] = [ValueError("Failed to look up actor 'RequestQueue'"), IdleQueue()]

    def resolve_queue(name: str, namespace: str):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(actor, "resolve_queue", resolve_queue)

    async def scenario():
        with pytest.raises(ValueError, match="RequestQueue"):
            await gateway.start()
        stats = await gateway.stats()
        assert "start failed" in stats["last_error"]
        assert "RequestQueue" in stats["last_error"]
        assert stats["tasks"] == {}
        assert (await gateway.start())["started"] is True
        assert (await gateway.start())["started"] is False  # still idempotent
        stats = await gateway.stats()
        assert set(stats["tasks"]) == {CLAIM_LOOP, WATCHDOG, METRICS}
        assert {t["restarts"] for t in stats["tasks"].values()} == {0}
        stopped = await gateway.shutdown(timeout=2.0)
        assert stopped["state"] == "stopped"
        assert {t["state"] for t in (await gateway.stats())["tasks"].values()} <= {
            "exited", "stopped"}

    asyncio.run(scenario())
