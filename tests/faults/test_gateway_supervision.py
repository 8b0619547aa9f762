"""The gateway supervises itself: a claim loop killed by an injected error is restarted
(the work completes, `v6ray status` says what happened), and a start that failed is tried
again until it works.

Real Ray, the real IBGateway actor, the simulator on an ephemeral loopback port; the queue
is the real RequestQueue, in the first test with one claim answer the loop cannot handle
(a stand-in for a bug).
"""

from __future__ import annotations

import pytest
import ray

from tests.helpers import wait_for
from v6ray.cli import status
from v6ray.client.api import Client
from v6ray.constants import QUEUE_ACTOR
from v6ray.gateway.actor import CLAIM_LOOP, WATCHDOG
from v6ray.gateway.testing import GatewayHarness
from v6ray.queue.config import QueueConfig
from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(180)

HARNESS_QUEUE = {"lease_seconds": 8.0, "backoff_base": 0.2, "backoff_cap": 2.0}


def start_queue_with_one_bad_claim(data_dir: str, namespace: str):
    """Registered under the queue's name before the harness looks for it, so the harness
    (and the gateway) use it. Defined here so that Ray ships the class by value."""
    from v6ray.queue.actor import RequestQueue

    class OneBadClaimQueue(RequestQueue):
        @ray.method(max_task_retries=0)
        async def claim_wait(self, n, worker_id, accept=None, wait_seconds=0.5):
            if not getattr(self, "answered_badly", False):
                self.answered_badly = True
                return [None], 0  # not a request: the claim loop raises on it
            return await RequestQueue.claim_wait(self, n, worker_id, accept, wait_seconds)

        async def answered_bad_claim(self) -> bool:
            return getattr(self, "answered_badly", False)

    queue = ray.remote(OneBadClaimQueue).options(
        name=QUEUE_ACTOR, namespace=namespace, lifetime="detached", num_cpus=0,
        max_concurrency=1000,
    ).remote(data_dir, QueueConfig(**HARNESS_QUEUE))
    ray.get(queue.ping.remote(), timeout=60)
    return queue


def test_a_claim_loop_killed_by_an_error_is_restarted_and_the_work_completes(
    ray_namespace, data_dir
):
    queue = start_queue_with_one_bad_claim(data_dir, ray_namespace)
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        queue_overrides=HARNESS_QUEUE) as h:
        assert h.queue._actor_id == queue._actor_id  # the harness found ours
        ids = h.submit_many(
            [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ", "RTY")]
            + [{"request_type": "position_update", "symbol": "*"}]
            + [{"request_type": "market_bars", "symbol": s,
                "parameters": {"duration": "2 D", "bar_size": "1 hour"}}
               for s in ("SPY", "QQQ")]
        )
        finals = h.wait_all(ids, timeout=60)
        assert ray.get(queue.answered_bad_claim.remote())
        assert [f.status for f in finals] == [Status.SUCCESS] * len(ids)

        tasks = h.gateway_stats()["tasks"]
        assert tasks[CLAIM_LOOP]["restarts"] == 1
        assert tasks[CLAIM_LOOP]["state"] == "running"
        assert "AttributeError" in tasks[CLAIM_LOOP]["last_error"]
        assert tasks[WATCHDOG]["restarts"] == 0

        # What `v6ray status` prints, from the same stats a client gets.
        text = status.to_text(Client(h.queue, namespace=ray_namespace).stats())
        assert "claim loop restarted 1×, last error AttributeError" in text


def test_a_gateway_whose_start_failed_starts_once_the_queue_is_there(ray_namespace, data_dir):
    """Its first start gives up on a missing queue (after resolve_queue's 30 s); it says
    so in its stats, keeps trying, and works once the queue exists."""
    from v6ray.queue.actor import get_or_create_queue

    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01, start_gateway=False,
                        queue_overrides=HARNESS_QUEUE) as h:
        ray.kill(h.queue, no_restart=True)
        wait_for(lambda: not named_actor_exists(QUEUE_ACTOR, ray_namespace), 30, "queue gone",
                 interval=0.2)
        h.queue = None
        h.start_gateway()
        wait_for(lambda: "start failed" in (h.gateway_stats()["last_error"] or ""), 90,
                 "the failed start in the gateway's stats", interval=0.2)
        assert h.gateway_stats()["tasks"] == {}
        h.queue = get_or_create_queue(data_dir, QueueConfig(**HARNESS_QUEUE),
                                      namespace=ray_namespace)
        [final] = h.wait_all([h.submit("futures_snapshot", "ES")], timeout=90)
        assert final.status is Status.SUCCESS
        stats = h.gateway_stats()
        assert stats["state"] == "connected" and stats["last_error"] is None


def named_actor_exists(name: str, namespace: str) -> bool:
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True

