"""Scale-out: writer throughput to S3 on 1 vs 3 raylets, commit conflicts, and the whole
service's requests/s with its tables on S3 vs on local disk. Ratios from one run.

    python bench/scaleout.py [--quick]

Starts moto's S3 server (127.0.0.1) and a Ray cluster of separate raylets on this machine
(``tests/cluster/raylets.py``, the cluster the tests use: the machine's own address, token
auth). Measured, each beside its counterpart:

1. rows/s committed by 1, 2 and 4 concurrent writer tasks (``merge_rows``, SPREAD) merging
   into one S3 table, first with the head alone, then with two worker raylets added;
   conflicts per 100 commits for each.
2. requests/s of a mixed workload (bars, futures snapshots, option chains, positions)
   through `v6ray up --simulate` (time scale 0.05) on the head alone, with the data dir on
   local disk and then on S3 (a local folder on several nodes is refused, so both run on one).

On one machine "3 raylets" shares the same cores: the figure shows what spreading costs or
gains here, not what three machines would do. Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
sys.path[:0] = [REPO, str(Path(__file__).resolve().parent)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))

import ray  # noqa: E402
from queue_bench import moto_s3  # noqa: E402

from tests.cluster.raylets import LocalRayCluster  # noqa: E402
from v6ray import cluster  # noqa: E402
from v6ray.constants import GATEWAY_NODE_RESOURCE, NAMESPACE, QUEUE_ACTOR  # noqa: E402
from v6ray.gateway.parsing import to_table  # noqa: E402
from v6ray.sim.universe import FUTURE_ROOTS, future_months  # noqa: E402

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
WRITER_COUNTS = (1, 2, 4)


@ray.remote(num_cpus=0.25, scheduling_strategy="SPREAD")
def bench_writer(data_dir: str, writer: int, commits: int, rows: int) -> dict:
    """``commits`` MERGE commits of ``rows`` new bars each into one table."""
    from v6ray.storage.writer import merge_rows

    conflicts = 0
    for commit in range(commits):
        first = (writer * 1000 + commit) * rows
        batch = [
            {"request_id": f"w{writer}c{commit}", "symbol": "SPY", "bar_size": "1 min",
             "what_to_show": "TRADES", "timestamp": T0 + timedelta(minutes=first + i),
             "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0}
            for i in range(rows)
        ]  # fmt: skip
        result = merge_rows(data_dir, "market_bars", to_table("market_bars", batch),
                            max_attempts=100)  # fmt: skip
        conflicts += result["conflicts"]
    return {"conflicts": conflicts, "node": ray.get_runtime_context().get_node_id()}


def writer_round(s3_root: str, writers: int, commits: int, rows: int) -> dict:
    data_dir = f"{s3_root}/w{writers}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    results = ray.get([bench_writer.remote(data_dir, w, commits, rows) for w in range(writers)])
    elapsed = time.perf_counter() - started
    total_commits = writers * commits
    return {
        "rows_per_s": writers * commits * rows / elapsed,
        "conflicts_per_100": 100.0 * sum(r["conflicts"] for r in results) / total_commits,
        "nodes": len({r["node"] for r in results}),
    }


def v6ray_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "v6ray", *argv],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def mixed_items(count: int) -> list[dict]:
    items: list[dict] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            end = (T0 - timedelta(days=i)).isoformat()
            items.append({"request_type": "market_bars", "symbol": "SPY",
                          "parameters": {"duration": "1 D", "bar_size": "1 hour", "end": end}})
        elif kind == 1:
            root = ("ES", "NQ")[(i // 4) % 2]
            listed = future_months(FUTURE_ROOTS[root], date.today())  # never an expired one
            month = listed[(i // 8) % len(listed)].contract_month
            items.append({"request_type": "futures_snapshot", "symbol": root,
                          "parameters": {"contract_month": month}})
        elif kind == 2:
            items.append({"request_type": "option_chain", "symbol": ("SPY", "QQQ", "IWM")[i % 3],
                          "parameters": {"strikes": 2, "dte": 20 + i}})
        else:
            items.append({"request_type": "position_update", "symbol": "*"})
    return items  # fmt: skip


def end_to_end(env: dict[str, str], address: str, data_dir: str, requests: int) -> float:
    """Requests/s of the mixed workload through `v6ray up --simulate` on ``data_dir``."""
    from v6ray.client.api import Client

    schedule = Path(tempfile.mkdtemp(prefix="v6ray-bench-")) / "jobs.toml"
    schedule.write_text("[scheduler]\nreplace_defaults = true\n")
    common = ("--address", address, "--data-dir", data_dir)
    done = v6ray_cli(env, "up", *common, "--simulate", "--detach", "--no-monitor",
                     "--time-scale", "0.05", "--schedule", str(schedule))  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"v6ray up failed: {done.stdout}{done.stderr}")
    try:
        client = Client(ray.get_actor(QUEUE_ACTOR, namespace=NAMESPACE), namespace=NAMESPACE)
        client.wait(client.submit("futures_snapshot", "RTY"), timeout=300)  # warm up
        started = time.perf_counter()
        ids = client.submit_many(mixed_items(requests))
        finals = [client.wait(rid, timeout=600) for rid in ids]
        elapsed = time.perf_counter() - started
        failed = [r for r in finals if r.status != "SUCCESS"]
        if failed:
            print(f"  ({len(failed)} of {len(finals)} requests did not succeed: "
                  f"{sorted({(r.request_type.value, r.error_message) for r in failed})[:3]})")
        return len(finals) / elapsed
    finally:
        v6ray_cli(env, "down", *common)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer commits and requests")
    args = parser.parse_args(argv)
    commits, rows, requests = (3, 200, 24) if args.quick else (6, 500, 60)

    workdir = Path(tempfile.mkdtemp(prefix="v6ray-scaleout-"))
    with moto_s3() as s3_root:
        token = workdir / "auth_token"
        cluster.create_token_file(token)
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                "RAY_USAGE_STATS_ENABLED": "0", "V6RAY_METRICS": "0"}  # fmt: skip
        os.environ.update(auth)
        env = {**os.environ, "PYTHONPATH": os.environ["PYTHONPATH"]}
        nodes = LocalRayCluster(workdir, env, num_cpus=2)
        try:
            nodes.start_head()
            cluster.connect(nodes.address, namespace=f"v6ray-bench-{uuid.uuid4().hex[:6]}")
            one = {k: writer_round(s3_root, k, commits, rows) for k in WRITER_COUNTS}
            local_rps = end_to_end(env, nodes.address, str(workdir / "local-data"), requests)
            s3_rps = end_to_end(env, nodes.address, f"{s3_root}/e2e", requests)
            nodes.add_worker("gateway", {GATEWAY_NODE_RESOURCE: 1})
            nodes.add_worker("writer")
            three = {k: writer_round(s3_root, k, commits, rows) for k in WRITER_COUNTS}
        finally:
            ray.shutdown()
            nodes.shutdown()

    print(f"\nwriter tasks merging into one S3 table ({commits} commits x {rows} rows each)")
    print(f"{'writers':>8} {'1 raylet rows/s':>16} {'3 raylets rows/s':>17} {'3/1':>6}"
          f" {'conflicts/100 (1)':>18} {'conflicts/100 (3)':>18} {'nodes used (3)':>15}")
    for k in WRITER_COUNTS:
        a, b = one[k], three[k]
        print(f"{k:>8} {a['rows_per_s']:>16.0f} {b['rows_per_s']:>17.0f}"
              f" {b['rows_per_s'] / a['rows_per_s']:>6.2f} {a['conflicts_per_100']:>18.1f}"
              f" {b['conflicts_per_100']:>18.1f} {b['nodes']:>15}")  # fmt: skip
    for label, table in (("1 raylet", one), ("3 raylets", three)):
        print(f"{label}: 4 writers / 1 writer rows/s = "
              f"{table[4]['rows_per_s'] / table[1]['rows_per_s']:.2f}")
    print(f"\nmixed workload, {requests} requests through `v6ray up --simulate` (one raylet)")
    print(f"  local disk {local_rps:.2f} req/s · S3 {s3_rps:.2f} req/s · "
          f"S3/local = {s3_rps / local_rps:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
