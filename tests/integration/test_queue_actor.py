"""The RequestQueue actor on a real local Ray: concurrent producers, claims, accept objects."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import ray

from v6ray.pacing.admission import Budget
from v6ray.queue.actor import get_or_create_queue
from v6ray.queue.config import QueueConfig
from v6ray.requests.model import Status
from v6ray.storage.reader import read_table

TYPES = ["futures_snapshot", "market_bars", "option_chain", "position_update"]


def item(caller: int, index: int) -> dict:
    """A distinct request (no two coalesce): the symbol carries caller and index."""
    rng = random.Random(caller * 100_000 + index)
    return {
        "request_type": rng.choice(TYPES),
        "symbol": f"C{caller}N{index}",
        "priority": rng.choice([1, 2, 3]),
    }


def produce(queue, caller: int, count: int) -> list[str]:
    """Half in submit_many batches of 250, half as single submits kept in flight together."""
    ids: list[str] = []
    half = count // 2
    for start in range(0, half, 250):
        batch = [item(caller, i) for i in range(start, min(start + 250, half))]
        ids += ray.get(queue.submit_many.remote(batch))
    singles = [item(caller, i) for i in range(half, count)]
    refs = [
        queue.submit.remote(s["request_type"], s["symbol"], s["priority"]) for s in singles
    ]
    ids += ray.get(refs)
    return ids


def test_ten_thousand_requests_from_concurrent_callers_claimed_in_exact_order(
    ray_namespace, data_dir
):
    queue = get_or_create_queue(data_dir, namespace=ray_namespace)
    callers, per_caller = 4, 2500
    with ThreadPoolExecutor(callers) as pool:
        results = list(pool.map(lambda c: produce(queue, c, per_caller), range(callers)))
    submitted = [rid for ids in results for rid in ids]
    assert len(submitted) == len(set(submitted)) == callers * per_caller

    claimed = []
    while True:
        batch = ray.get(queue.claim.remote(1000, "gw"))
        if not batch:
            break
        claimed += batch
    assert sorted(r.request_id for r in claimed) == sorted(submitted)
    order = [(r.priority, r.created_at) for r in claimed]
    assert order == sorted(order)  # priority first, then age, across all claims
    assert len({r.created_at for r in claimed}) == len(claimed)  # a total order
    assert {r.status for r in claimed} == {Status.PROCESSING}

    stats = ray.get(queue.stats.remote())
    assert stats["in_flight"] == 10_000
    assert stats["submitted_total"] == 10_000
    assert sum(stats["by_priority"][p]["PROCESSING"] for p in "123") == 10_000
    # the journal holds two rows per request (PENDING, then PROCESSING) in far fewer commits
    assert stats["journal"]["rows"] == 20_000
    assert stats["journal"]["commits"] < 2_000
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == 10_000
    assert set(frame["status"].unique()) == {"PROCESSING"}


def test_a_budget_travels_to_the_actor_and_skips_without_blocking(ray_namespace, data_dir):
    queue = get_or_create_queue(data_dir, namespace=ray_namespace)
    bars = [{"request_type": "market_bars", "symbol": f"B{i}", "priority": 1} for i in range(5)]
    snaps = [{"request_type": "futures_snapshot", "symbol": f"F{i}", "priority": 3}
             for i in range(3)]
    ray.get(queue.submit_many.remote(bars + snaps))
    # Room for two historical requests: each market_bars takes one, a snapshot a line.
    budget = Budget(small_bar=100, large_bar=100, historical=2, lines=100, requests=100)
    claimed = ray.get(queue.claim.remote(10, "gw", budget))
    assert [r.symbol for r in claimed] == ["B0", "B1", "F0", "F1", "F2"]
    rest = ray.get(queue.claim.remote(10, "gw"))
    assert [r.symbol for r in rest] == ["B2", "B3", "B4"]


def test_lease_lifecycle_through_the_actor(ray_namespace, data_dir):
    config = QueueConfig(lease_seconds=0.5, max_attempts=2, backoff_base=0.0,
                         housekeeping_seconds=0.1)
    queue = get_or_create_queue(data_dir, config, namespace=ray_namespace)
    rid = ray.get(queue.submit.remote("futures_snapshot", "ES", 1))
    [first] = ray.get(queue.claim.remote(1, "gw-1"))
    assert ray.get(queue.renew.remote([rid], "gw-1")) == 1
    assert ray.get(queue.fail.remote(rid, "gw-1", "IB error 1100", True)) is Status.PENDING
    [second] = ray.get(queue.claim.remote(1, "gw-2"))
    assert second.attempts == 2
    assert ray.get(queue.complete.remote(rid, "gw-1", {})) is False
    # gw-2 never answers: its lease expires, attempts are exhausted -> dead letter
    final = ray.get(queue.wait.remote(rid, 10))
    assert final.status is Status.FAILED
    assert "attempts exhausted" in final.error_message
    assert read_table("ib_requests", data_dir=data_dir)["status"].to_list() == ["FAILED"]
    assert first.lease_owner == "gw-1"


def test_compact_on_demand_keeps_the_latest_state(ray_namespace, data_dir):
    queue = get_or_create_queue(data_dir, namespace=ray_namespace)
    ids = ray.get(queue.submit_many.remote(
        [{"request_type": "futures_snapshot", "symbol": f"S{i}"} for i in range(50)]))
    for request in ray.get(queue.claim.remote(20, "gw")):
        ray.get(queue.complete.remote(request.request_id, "gw", {"rows": 1}))
    before = read_table("ib_requests", data_dir=data_dir).sort("request_id")
    report = ray.get(queue.compact.remote())
    assert report["rows_after"] == 50 and report["files"] == 1
    assert read_table("ib_requests", data_dir=data_dir).sort("request_id").equals(before)
    assert ray.get(queue.stats.remote())["journal"]["files"] == 1
    assert ray.get(queue.get.remote(ids[0])).status is Status.SUCCESS
