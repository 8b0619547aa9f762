"""Request queue throughput and latency, each beside a bare Ray actor measured the same way.

    python bench/queue_bench.py [--quick] [--journal-append-only]

Starts a local Ray cluster, a RequestQueue on a temporary data dir (durable: every
acknowledged submit is committed to Delta) and a ``BareQueue`` actor with the same
methods and options that does no validation and no I/O. Each measurement runs the same
call pattern against both, so the ratio shows what durability and the queue's logic cost
over Ray's own per-call overhead on this machine. Not a test.

It also times the journal's appends (50 rows each, no Ray) on local disk (the hand-built
append) and on an S3 server (deltalake's conditional-put commit; moto's standalone server
on 127.0.0.1, from the `test` extra), and prints the ratio object store / local.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import ray

REPO = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, REPO)  # run from a checkout: the driver and (below) Ray's workers
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))

from v6ray.queue.actor import MAX_CONCURRENCY, get_or_create_queue  # noqa: E402
from v6ray.queue.config import QueueConfig  # noqa: E402
from v6ray.queue.journal import Journal  # noqa: E402
from v6ray.requests.model import new_request  # noqa: E402

BATCH = 1_000
CALLERS = 8
PRODUCERS = 2  # programs submitting in the open-loop latency run


class BareQueue:
    """The queue's call surface with no validation, no state and no I/O."""

    def __init__(self) -> None:
        self._claimable = [new_request("futures_snapshot", f"B{i}") for i in range(1_000)]

    async def submit(self, request_type, symbol, priority=2, parameters=None, result_table=None):
        return str(uuid.uuid4())

    async def submit_many(self, items):
        return [str(uuid.uuid4()) for _ in items]

    async def claim(self, n, worker_id, accept=None):
        return self._claimable[:n]

    async def complete(self, request_id, worker_id, result_data):
        return True

    async def complete_many(self, outcomes, worker_id):
        return [True] * len(outcomes)

    async def ping(self):
        return "pong"


@ray.remote(num_cpus=0)
class Caller:
    """One producer process keeping ``window`` single submits in flight."""

    async def submit_singles(self, target, tag: str, count: int, window: int) -> float:
        started = time.perf_counter()
        in_flight: set[asyncio.Future] = set()
        for i in range(count):
            if len(in_flight) >= window:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            ref = target.submit.remote("futures_snapshot", f"{tag}X{i}", 1 + i % 3)
            in_flight.add(asyncio.ensure_future(ref))
        await asyncio.gather(*in_flight)
        return time.perf_counter() - started


def items(tag: str, count: int) -> list[dict]:
    return [{"request_type": "futures_snapshot", "symbol": f"{tag}X{i}", "priority": 1 + i % 3}
            for i in range(count)]


def batched_rate(target, batches: int, in_flight: int = 4) -> float:
    payloads = [items(f"M{uuid.uuid4().hex[:8]}", BATCH) for _ in range(batches)]
    started = time.perf_counter()
    pending = []
    for payload in payloads:
        if len(pending) >= in_flight:
            _, pending = ray.wait(pending, num_returns=1)
        pending.append(target.submit_many.remote(payload))
    ray.get(pending)
    return batches * BATCH / (time.perf_counter() - started)


def singles_rate(target, callers, per_caller: int, window: int) -> float:
    tag = uuid.uuid4().hex[:6].upper()
    started = time.perf_counter()
    ray.get([c.submit_singles.remote(target, f"S{tag}C{k}", per_caller, window)
             for k, c in enumerate(callers)])
    return len(callers) * per_caller / (time.perf_counter() - started)


def complete_each(target, claimed) -> list:
    """One complete call per claimed request."""
    return [target.complete.remote(r.request_id, "bench-gw", {"rows": 1}) for r in claimed]


def complete_at_once(target, claimed) -> list:
    """The gateway's pattern: one complete_many for the whole claim."""
    return [target.complete_many.remote([(r.request_id, {"rows": 1}) for r in claimed],
                                        "bench-gw")]


def claim_complete_rate(target, total: int, complete, per_claim: int = 200) -> float:
    """Requests/s through claim(per_claim) then ``complete(target, claimed)``."""
    done = 0
    started = time.perf_counter()
    while done < total:
        claimed = ray.get(target.claim.remote(per_claim, "bench-gw"))
        if not claimed:
            break
        ray.get(complete(target, claimed))
        done += len(claimed)
    return done / (time.perf_counter() - started)


async def open_loop_latencies(target, rate: float, seconds: float) -> list[float]:
    """Submit at a fixed schedule whatever the answers do; latency from the scheduled time."""
    tag = uuid.uuid4().hex[:6].upper()
    latencies: list[float] = []

    async def one(i: int, scheduled: float) -> None:
        await target.submit.remote("market_bars", f"L{tag}X{i}", 2)
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    return latencies


@ray.remote(num_cpus=0)
class ClientProducer:
    """A producer program using the public client: ``threads`` submit at scheduled times."""

    def open_loop(self, queue, rate: float, seconds: float, threads: int = 64) -> list[float]:
        from concurrent.futures import ThreadPoolExecutor

        from v6ray.client.api import Client

        client = Client(queue)
        tag = uuid.uuid4().hex[:6].upper()
        latencies: list[float] = []

        def one(i: int, scheduled: float) -> None:
            client.submit("market_bars", f"C{tag}X{i}", 2)
            latencies.append(time.perf_counter() - scheduled)

        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter() + 0.05
            for i in range(int(rate * seconds)):
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, i, scheduled)
        return latencies


def client_open_loop(queue, producers, rate: float, seconds: float) -> list[float]:
    """``rate`` submits/s in all, shared by the producer programs, through ``v6ray.Client``."""
    share = rate / len(producers)
    runs = [p.open_loop.remote(queue, share, seconds) for p in producers]
    return [latency for run in ray.get(runs) for latency in run]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


JOURNAL_ROWS = 50  # rows per journal append in the local / object-store comparison


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """An empty bucket on moto's standalone S3 server (127.0.0.1); yields s3://bucket/data
    with this process's AWS_* environment pointing at it. Stops the server afterwards."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # fmt: skip
    saved = {name: os.environ.get(name) for name in env}
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(env)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench"
                     ).create_bucket(Bucket="v6ray-bench")  # fmt: skip
        yield "s3://v6ray-bench/data"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.terminate()
        server.wait(timeout=10)


def journal_append_ms(data_dir: str, appends: int) -> list[float]:
    """Milliseconds per ``Journal.append`` of JOURNAL_ROWS new requests (after a warm-up)."""
    journal = Journal(data_dir)
    times = []
    try:
        for i in range(appends + 3):
            batch = [new_request("futures_snapshot", f"J{i}X{j}") for j in range(JOURNAL_ROWS)]
            started = time.perf_counter()
            journal.append(batch)
            if i >= 3:
                times.append((time.perf_counter() - started) * 1e3)
    finally:
        journal.close()
    return times


def journal_append_comparison(appends: int) -> None:
    with tempfile.TemporaryDirectory(prefix="v6ray-bench-journal-") as local_dir:
        local = journal_append_ms(local_dir, appends)
    with moto_s3() as s3_dir:
        remote = journal_append_ms(s3_dir, appends)
    local_p50, remote_p50 = statistics.median(local), statistics.median(remote)
    print(f"  journal append of {JOURNAL_ROWS} rows, {appends} appends each (no Ray): "
          f"local disk (hand-built commit) p50 {local_p50:.1f} ms, p90 "
          f"{percentile(local, 0.9):.1f} ms | S3 server on 127.0.0.1 (deltalake conditional-"
          f"put commit, checkpoint every 10) p50 {remote_p50:.1f} ms, p90 "
          f"{percentile(remote, 0.9):.1f} ms | ratio object store / local "
          f"{remote_p50 / local_p50:.1f}x (p50), "
          f"{statistics.fmean(remote) / statistics.fmean(local):.1f}x (mean)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke check)")
    parser.add_argument("--commit-interval", type=float, metavar="SECONDS",
                        help="the queue's commit_interval_seconds (default: QueueConfig's)")
    parser.add_argument("--journal-append-only", action="store_true",
                        help="only the journal append comparison, local disk vs S3 (no Ray)")
    args = parser.parse_args(argv)
    scale = 0.2 if args.quick else 1.0
    if args.journal_append_only:
        print(f"v6ray journal append benchmark: {os.cpu_count()} cores, one run")
        journal_append_comparison(max(20, int(200 * scale)))
        return 0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             configure_logging=False, namespace=f"bench-{uuid.uuid4().hex[:6]}")
    data_dir = tempfile.mkdtemp(prefix="v6ray-bench-")
    # The default configuration (automatic journal compaction included) unless told.
    config = QueueConfig()
    if args.commit_interval is not None:
        config = config.with_changes(commit_interval_seconds=args.commit_interval)
    queue = get_or_create_queue(data_dir, config)
    bare = ray.remote(BareQueue).options(num_cpus=0, max_concurrency=MAX_CONCURRENCY).remote()
    callers = [Caller.remote() for _ in range(CALLERS)]
    ray.get([queue.ping.remote(), bare.ping.remote()])
    ray.get([c.submit_singles.remote(bare, "W", 10, 5) for c in callers])  # warm up
    batched_rate(queue, 2)
    batched_rate(bare, 2)

    batches = max(2, int(40 * scale))
    per_caller, window = max(100, int(2_500 * scale)), 64
    queue_batched, bare_batched = batched_rate(queue, batches), batched_rate(bare, batches)
    queue_single = singles_rate(queue, callers, per_caller, window)
    bare_single = singles_rate(bare, callers, per_caller, window)
    to_claim = int(20_000 * scale)
    queue_cc = claim_complete_rate(queue, to_claim, complete_each)
    bare_cc = claim_complete_rate(bare, to_claim, complete_each)
    queue_ccm = claim_complete_rate(queue, to_claim, complete_at_once)
    bare_ccm = claim_complete_rate(bare, to_claim, complete_at_once)
    producers = [ClientProducer.remote() for _ in range(PRODUCERS)]
    client_open_loop(queue, producers, 100, 0.5)  # warm up
    client_latencies = client_open_loop(queue, producers, 1_000, 8 * scale)
    latencies = asyncio.run(open_loop_latencies(queue, 1_000, 8 * scale))
    bare_latencies = asyncio.run(open_loop_latencies(bare, 1_000, 8 * scale))
    journal = ray.get(queue.stats.remote())["journal"]

    p50, p99 = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
    bare_p99 = percentile(bare_latencies, 0.99) * 1e3
    client_p50 = percentile(client_latencies, 0.5) * 1e3
    client_p99 = percentile(client_latencies, 0.99) * 1e3
    print(f"v6ray queue benchmark: {os.cpu_count()} cores, one run, durable = committed to Delta")
    print(f"  submit_many, batches of {BATCH:,} (4 in flight): "
          f"{queue_batched:,.0f} req/s | bare actor {bare_batched:,.0f} req/s | "
          f"ratio {queue_batched / bare_batched:.2f} | target >= 20,000 req/s: "
          f"{verdict(queue_batched >= 20_000)}")
    print(f"  single submit, {CALLERS} callers x {window} in flight: "
          f"{queue_single:,.0f} req/s | bare actor {bare_single:,.0f} calls/s | "
          f"ratio {queue_single / bare_single:.2f} | target >= 0.50: "
          f"{verdict(queue_single >= 0.5 * bare_single)}")
    print(f"  claim(200) + 200 completes: {queue_cc:,.0f} req/s | bare actor {bare_cc:,.0f} "
          f"req/s | ratio {queue_cc / bare_cc:.2f}")
    print(f"  claim(200) + one complete_many(200): {queue_ccm:,.0f} req/s | bare actor "
          f"{bare_ccm:,.0f} req/s | ratio {queue_ccm / bare_ccm:.2f}")
    print(f"  open loop 1,000 submits/s for {8 * scale:g} s through v6ray.Client "
          f"({PRODUCERS} programs x 500/s): p50 {client_p50:.1f} ms, p99 {client_p99:.1f} ms, "
          f"max {max(client_latencies) * 1e3:.1f} ms | target p99 < 100 ms: "
          f"{verdict(client_p99 < 100)}")
    print(f"  open loop 1,000 calls/s straight to the actor (one call per submit): p50 "
          f"{p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1e3:.1f} ms | "
          f"bare actor p99 {bare_p99:.1f} ms")
    print(f"  journal: {journal['rows']:,} rows in {journal['commits']:,} commits "
          f"({journal['rows'] / max(1, journal['commits']):.0f} rows/commit)")
    ray.shutdown()
    journal_append_comparison(max(20, int(200 * scale)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
