"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def connect():
    """Factory of plain ib_async clients on a simulator; each records (req_id, code, text)
    of every error it sees, and all are disconnected afterwards."""
    from ib_async import IB

    clients: list[IB] = []

    def factory(sim, client_id: int = 1) -> tuple[IB, list[tuple[int, int, str]]]:
        ib = IB()
        errors: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
        ib.connect("127.0.0.1", sim.port, clientId=client_id, readonly=True, timeout=10)
        clients.append(ib)
        return ib, errors

    yield factory
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def harness(ray_namespace, data_dir):
    """The whole stack on a fresh data dir: queue, IBGateway, simulator (time scale 0.01)."""
    from v6ray.gateway.testing import GatewayHarness

    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01) as h:
        yield h
