"""``v6ray.connect`` / ``Client`` against a real queue actor."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

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


def test_threads_submitting_at_once_share_commits_and_keep_their_own_outcomes(client, data_dir):
    def submit(i: int) -> str | Exception:
        try:  # every 25th is bad: only its own caller sees the error
            return client.submit("futures_snapshot", f"T{i}", priority=7 if i % 25 == 0 else 2)
        except v6ray.InvalidRequest as exc:
            return exc

    commits_before = client.stats()["queue"]["journal"]["commits"]
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(submit, range(500)))
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 20 and {e.field for e in errors} == {"priority"}
    ids = [o for o in outcomes if isinstance(o, str)]
    assert len(set(ids)) == 480
    commits = client.stats()["queue"]["journal"]["commits"] - commits_before
    assert commits < 480 / 4  # submits waiting together went out (and were journaled) together
    # Acknowledged means journaled: every id is in ib_requests, with its own symbol.
    table = v6ray.read_table("ib_requests", data_dir=data_dir)
    by_id = dict(zip(table["request_id"], table["symbol"], strict=True))
    assert sorted(by_id[rid] for rid in ids) == sorted(f"T{i}" for i in range(500) if i % 25)


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
