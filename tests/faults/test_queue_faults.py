"""The queue loses nothing it acknowledged: actor killed mid-stream, whole Ray restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import ray
from ray.exceptions import RayActorError

from tests.helpers import wait_for
from v6ray.queue.actor import get_or_create_queue
from v6ray.requests.model import Status
from v6ray.storage.reader import read_table

REPO = Path(__file__).resolve().parents[2]
ACTOR_DOWN = (RayActorError, ray.exceptions.ActorUnavailableError)


def submit_until_acknowledged(call, deadline: float):
    """A producer's retry loop: the same submission again until the queue acknowledges it."""
    while True:
        try:
            return ray.get(call(), timeout=60)
        except ACTOR_DOWN:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_actor_killed_mid_stream_keeps_every_acknowledged_request_once(ray_namespace, data_dir):
    queue = get_or_create_queue(data_dir, namespace=ray_namespace)
    ray.get(queue.ping.remote())
    acknowledged: dict[str, str] = {}  # symbol -> request_id
    lock = threading.Lock()
    killed = threading.Event()
    deadline = time.monotonic() + 90

    def producer(caller: int) -> None:
        for i in range(60):
            if i % 3 == 0:  # a small batch
                symbols = [f"P{caller}B{i}X{k}" for k in range(20)]
                items = [{"request_type": "futures_snapshot", "symbol": s} for s in symbols]
                ids = submit_until_acknowledged(
                    lambda items=items: queue.submit_many.remote(items), deadline)
            else:
                symbols = [f"P{caller}S{i}"]
                ids = [submit_until_acknowledged(
                    lambda s=symbols[0], p=1 + i % 3: queue.submit.remote("market_bars", s, p),
                    deadline)]
            with lock:
                acknowledged.update(zip(symbols, ids, strict=True))
            if i == 40:
                killed.wait(30)  # keep submitting across the restart

    threads = [threading.Thread(target=producer, args=(c,)) for c in range(4)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    ray.kill(queue, no_restart=False)
    killed.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    expected = 4 * (20 * 20 + 40)
    assert len(acknowledged) == expected

    # the restarted actor rebuilt itself from the journal
    assert ray.get(queue.ping.remote(), timeout=60) == "pong"
    stats = ray.get(queue.stats.remote())
    assert stats["depth"]["PENDING"] == expected
    assert stats["submitted_total"] < expected  # counts of the new instance: it did restart
    frame = read_table("ib_requests", data_dir=data_dir)
    assert frame.height == expected  # no request twice, even ones retried across the kill
    assert dict(zip(frame["symbol"], frame["request_id"], strict=True)) == acknowledged
    claimed = ray.get(queue.claim.remote(expected + 10, "gw"))
    assert sorted(r.request_id for r in claimed) == sorted(acknowledged.values())


FIRST_LIFE = textwrap.dedent("""
    import json, sys
    import ray
    from v6ray.queue.actor import get_or_create_queue
    from v6ray.queue.config import QueueConfig

    ray.init(num_cpus=1, include_dashboard=False, namespace="v6ray",
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    queue = get_or_create_queue(sys.argv[1], QueueConfig(lease_seconds=3600))
    ids = ray.get(queue.submit_many.remote(
        [{"request_type": "futures_snapshot", "symbol": f"S{i}", "priority": 1 + i % 3}
         for i in range(200)]))
    ids.append(ray.get(queue.submit.remote("market_bars", "SPY", 1, {"duration": "2 D"})))
    leased = [r.request_id for r in ray.get(queue.claim.remote(5, "gw-1"))]
    done = ray.get(queue.claim.remote(1, "gw-1"))[0].request_id
    assert ray.get(queue.complete.remote(done, "gw-1", {"rows": 7}))
    print(json.dumps({"ids": ids, "leased": leased, "done": done}))
    ray.shutdown()
""")

SECOND_LIFE = textwrap.dedent("""
    import json, sys
    import ray
    from v6ray.queue.actor import get_or_create_queue

    ray.init(num_cpus=1, include_dashboard=False, namespace="v6ray",
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    queue = get_or_create_queue(sys.argv[1])
    known = json.loads(sys.stdin.read())
    states = {rid: ray.get(queue.get.remote(rid)) for rid in known["ids"]}
    print(json.dumps({
        "missing": [rid for rid, r in states.items() if r is None],
        "status": {rid: r.status.value for rid, r in states.items() if r},
        "owners": {rid: r.lease_owner for rid, r in states.items() if r},
        "done_result": states[known["done"]].result_data,
        "claimed": [r.request_id for r in ray.get(queue.claim.remote(1000, "gw-2"))],
        "depth": ray.get(queue.stats.remote())["depth"],
    }))
    ray.shutdown()
""")


def run_child(script: str, data_dir: str, stdin: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    result = subprocess.run(
        [sys.executable, "-c", script, data_dir],
        input=stdin, capture_output=True, text=True, timeout=150, cwd=REPO, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_full_ray_restart_recovers_the_queue_from_ib_requests(data_dir):
    first = run_child(FIRST_LIFE, data_dir)
    second = run_child(SECOND_LIFE, data_dir, stdin=json.dumps(first))
    assert second["missing"] == []
    assert len(second["status"]) == 201
    assert second["status"][first["done"]] == Status.SUCCESS.value
    assert second["done_result"] == {"rows": 7}
    for rid in first["leased"]:  # leases survive with their owner (and are not claimable)
        assert second["status"][rid] == Status.PROCESSING.value
        assert second["owners"][rid] == "gw-1"
    pending = set(first["ids"]) - set(first["leased"]) - {first["done"]}
    assert set(second["claimed"]) == pending
    assert second["depth"]["PROCESSING"] == len(pending) + len(first["leased"])
    assert second["depth"]["SUCCESS"] == 1
    assert read_table("ib_requests", data_dir=data_dir).height == 201


def test_client_wait_survives_a_queue_restart(ray_namespace, data_dir):
    from v6ray.client.api import Client

    queue = get_or_create_queue(data_dir, namespace=ray_namespace)
    client = Client(queue, namespace=ray_namespace)
    rid = client.submit("futures_snapshot", "ES")
    outcome: dict = {}
    waiter = threading.Thread(target=lambda: outcome.update(final=client.wait(rid, timeout=60)))
    waiter.start()
    time.sleep(0.5)  # the wait is parked in the actor
    ray.kill(queue, no_restart=False)
    # claim only once the new instance answers (its counters restart from 0): a claim the
    # dying instance journaled but could not answer would hold the lease for lease_seconds
    wait_for(lambda: ray.get(queue.stats.remote(), timeout=60)["submitted_total"] == 0, 60,
             "the restarted queue instance", interval=0.1)
    [claimed] = ray.get(queue.claim.remote(1, "gw"))
    assert claimed.request_id == rid
    assert ray.get(queue.complete.remote(rid, "gw", {"rows": 1}))
    waiter.join(timeout=30)
    assert outcome["final"].status is Status.SUCCESS


HOLD_JOURNAL = textwrap.dedent("""
    import sys, time
    from v6ray.queue.journal import Journal

    journal = Journal(sys.argv[1])
    print("holding", flush=True)
    time.sleep(300)
""")


def test_a_second_queue_on_a_data_dir_in_use_fails_with_a_clear_error(ray_namespace, data_dir):
    """Another process (a second service, a predecessor still exiting) writes the journal:
    the queue waits its bounded time for the writer lock, then dies saying why."""
    from v6ray.queue.config import QueueConfig

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_JOURNAL, data_dir], env=env,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "holding"
        queue = get_or_create_queue(
            data_dir, QueueConfig(journal_lock_timeout_seconds=2.0), namespace=ray_namespace)
        started = time.monotonic()
        try:
            ray.get(queue.ping.remote(), timeout=120)
            raise AssertionError("a queue started beside another journal writer")
        except ACTOR_DOWN as exc:
            message = str(exc)
        assert "only one queue may use a data dir" in message
        assert f"pid {holder.pid}" in message
        assert time.monotonic() - started < 90
        holder.kill()  # as SIGKILL: the kernel releases the lock
        holder.wait(timeout=30)
        ray.kill(queue, no_restart=True)
        successor = get_or_create_queue(data_dir, namespace=ray_namespace, name="queue-2")
        assert ray.get(successor.ping.remote(), timeout=120) == "pong"
        assert ray.get(successor.submit.remote("futures_snapshot", "ES"), timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
