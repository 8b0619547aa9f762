"""``v6ray.connect`` / ``Client`` against a real queue actor."""

from __future__ import annotations

import time

import pytest
import ray

import v6ray
from v6ray.constants import GATEWAY_ACTOR
from v6ray.queue.actor import get_or_create_queue


@pytest.fixture
def client(ray_namespace, data_dir) -> v6ray.Client:
    get_or_create_queue(data_dir, namespace=ray_namespace)
    return v6ray.connect(namespace=ray_namespace)  # Ray is up: connect just finds the actor


def test_submit_get_wait_cancel(client, ray_namespace):
    rid = client.submit("market_bars", "SPY", priority=2,
                        parameters={"duration": "5 D", "bar_size": "1 hour"})
    request = client.get(rid)
    assert isinstance(request, v6ray.IBRequest)
    assert request.status is v6ray.Status.PENDING
    assert request.parameters["bar_size"] == "1 hour"
    assert client.get("no-such-id") is None

    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:  # RequestTimeout is a TimeoutError
        client.wait(rid, timeout=0.3)
    assert isinstance(info.value, v6ray.RequestTimeout)
    assert time.monotonic() - started < 5

    assert client.cancel(rid) is True
    assert client.cancel(rid) is False
    assert client.wait(rid, timeout=5).status is v6ray.Status.CANCELLED

    ids = client.submit_many([{"request_type": "futures_snapshot", "symbol": "ES"},
                              {"request_type": "position_update", "symbol": "*"}])
    assert len(ids) == 2
    queue = ray.get_actor("RequestQueue", namespace=ray_namespace)
    [claimed, _] = ray.get(queue.claim.remote(2, "gw"))
    ray.get(queue.complete.remote(claimed.request_id, "gw", {"rows": 4}))
    assert client.wait(ids[0], timeout=5).result_data == {"rows": 4}


def test_errors_arrive_as_v6ray_exceptions(client):
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit("market_bars", "SPY", parameters={"bar_size": "7 min"})
    assert info.value.field == "parameters.bar_size"
    assert type(info.value) is v6ray.InvalidRequest
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit("market_bars", "SPY", priority=7)
    assert info.value.field == "priority"
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit_many([{"request_type": "futures_snapshot", "symbol": "ES"},
                            {"request_type": "futures_snapshot", "symbol": "ES",
                             "result_table": "market_bars"}])
    assert info.value.field == "items[1].result_table"
    with pytest.raises(v6ray.UnknownRequest):
        client.wait("no-such-id", timeout=1)
    assert client.stats()["queue"]["depth"]["PENDING"] == 0  # nothing was queued


def test_stats_include_the_gateway_when_it_runs(client, ray_namespace):
    stats = client.stats()
    assert stats["gateway"] == {"state": "not running"}
    assert set(stats["queue"]) >= {"depth", "by_type", "by_priority", "in_flight",
                                   "oldest_pending_age_s", "recent_failures", "journal",
                                   "submitted_total", "coalesced_total"}

    @ray.remote(num_cpus=0)
    class FakeGateway:
        def stats(self):
            return {"state": "connected", "pacing": {"hist": 3}}

    gateway = FakeGateway.options(name=GATEWAY_ACTOR, namespace=ray_namespace).remote()
    ray.get(gateway.stats.remote())  # registered (and kept alive by this handle)
    assert client.stats()["gateway"] == {"state": "connected", "pacing": {"hist": 3}}


def test_connect_without_a_queue_says_not_running(ray_cluster):
    with pytest.raises(v6ray.NotRunning) as info:
        v6ray.connect(namespace="v6ray-test-nothing-here")
    assert "RequestQueue" in str(info.value)
