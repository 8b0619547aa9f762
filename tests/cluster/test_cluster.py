"""v6ray on a real three-node Ray cluster (head, gateway node, writer node) with its tables
on the S3 test server: placement, writers on several nodes, concurrent commits, node loss.

One cluster for the whole module (conftest ``ray_nodes``); the tests run in file order:
one `v6ray up --address ...` service shared by the service tests (taken down at the end),
then writer-only tests that drive the writer and derive tasks directly. Small workloads,
simulator at time scale 0.05: CI has 2 cores.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import ray

from tests.cluster.conftest import node_ids
from tests.conftest import make_bucket
from tests.helpers import wait_for
from tests.integration.test_up_down import v6ray_cli
from v6ray.client.api import Client
from v6ray.constants import GATEWAY_ACTOR, NAMESPACE, QUEUE_ACTOR, SCHEDULER_ACTOR, SIMULATOR_ACTOR
from v6ray.gateway.parsing import to_table
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import table_spec

# Per test: the first one also waits for the cluster to start (minutes on busy cores).
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

TIME_SCALE = "0.05"
SETTLE_TIMEOUT = 240.0  # every request final, on 2 busy cores with three raylets
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
DAY0 = datetime(2026, 1, 5, tzinfo=UTC)  # midnight: a day's minutes stay in its partition
WRITER_FUNCTION = "_merge_rows_task"
# Batches per writer in the concurrency test: the full 8 x 50. Each batch's keys slide
# forward in its day (``_batch_bars``), so a MERGE reads a few recent files, not the day's
# whole history: the first cut, whose batches all spanned the middle of the day, made every
# MERGE read every earlier file of its day and 8 x 50 did not finish within 900 s.
CONCURRENT_BATCHES = int(os.environ.get("V6RAY_CLUSTER_TEST_BATCHES", "50"))


# ------------------------------------------------------------------ helpers


def _gcs() -> str:
    """This cluster's address: the state API would otherwise look for "the" local Ray and
    refuse when the machine runs several."""
    return ray.get_runtime_context().gcs_address


def alive_actor_nodes() -> dict[str, str]:
    """Name → node id of v6ray's live named actors (``ray.util.state``)."""
    from ray.util.state import list_actors

    actors = list_actors(address=_gcs(), filters=[("state", "=", "ALIVE")], limit=1000)
    return {a["name"]: a["node_id"] for a in actors if a.get("ray_namespace") == NAMESPACE}


def writer_task_nodes() -> set[str]:
    """Nodes where a writer task finished (``ray.util.state``)."""
    from ray.util.state import list_tasks

    tasks = list_tasks(
        address=_gcs(),
        filters=[("func_or_class_name", "=", WRITER_FUNCTION), ("state", "=", "FINISHED")],
        limit=10_000,
        raise_on_missing_output=False,
    )
    return {t["node_id"] for t in tasks if t.get("node_id")}


def bar_requests(count: int, first_day: int = 0) -> list[dict]:
    """Distinct market_bars requests (one day of hourly bars each, different days)."""
    return [
        {
            "request_type": "market_bars",
            "symbol": "SPY",
            "parameters": {
                "duration": "1 D",
                "bar_size": "1 hour",
                "end": (T0 - timedelta(days=first_day + i)).isoformat(),
            },
        }
        for i in range(count)
    ]


def assert_every_row_once(client: Client, request_ids: list[str], data_dir: str) -> None:
    """Each request SUCCESS; no bar twice in the S3 table; every request's bars there.

    A bar fetched again by a later request (two one-day windows that fall on the same
    session, e.g. over a weekend) carries the later request's id (bar identity), so a
    request may own fewer rows than it reported, never more; the rows it lost belong to a
    request of the same batch.
    """
    finals = [client.wait(rid, timeout=SETTLE_TIMEOUT) for rid in request_ids]
    assert [r.status for r in finals] == ["SUCCESS"] * len(finals), [
        (r.request_id, r.status, r.error_message) for r in finals if r.status != "SUCCESS"
    ]
    bars = read_table("market_bars", data_dir=data_dir)
    keys = list(table_spec("market_bars").key_columns)
    assert bars.unique(subset=keys).height == bars.height, "a bar is in the table twice"
    counts = dict(bars.group_by("request_id").len().iter_rows())
    reported = {}
    for request in finals:
        result = request.result_data
        reported[request.request_id] = (json.loads(result) if isinstance(result, str) else result)[
            "rows"
        ]
        assert counts.get(request.request_id, 0) <= reported[request.request_id]
    exact = [rid for rid in reported if counts.get(rid, 0) == reported[rid]]
    assert len(exact) >= len(reported) // 2, "most windows are separate sessions"
    assert sum(reported.values()) > 0


# ------------------------------------------------------------------ the service


def test_up_refuses_a_local_data_dir_on_a_multi_node_cluster(ray_nodes, tmp_path):
    done = v6ray_cli(
        "up", "--address", ray_nodes.address, "--data-dir", str(tmp_path / "local"),
        "--simulate", "--detach", "--no-monitor", "--time-scale", TIME_SCALE,
    )  # fmt: skip
    assert done.returncode != 0
    reason = done.stderr.strip().splitlines()[-1]
    assert "local folder" in reason and "3 nodes" in reason and "s3://" in reason
    assert QUEUE_ACTOR not in alive_actor_nodes()  # nothing was deployed


@pytest.fixture(scope="module")
def service(ray_nodes, s3_server, tmp_path_factory):
    """`v6ray up --address <cluster> --data-dir s3://... --simulate`, no scheduled jobs."""
    data_dir = f"s3://{make_bucket(s3_server)}/data"
    schedule = tmp_path_factory.mktemp("schedule") / "jobs.toml"
    schedule.write_text("[scheduler]\nreplace_defaults = true\n")
    common = ("--address", ray_nodes.address, "--data-dir", data_dir)
    done = v6ray_cli(
        "up", *common, "--simulate", "--detach", "--no-monitor",
        "--time-scale", TIME_SCALE, "--schedule", str(schedule),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield {"data_dir": f"{data_dir}/simulated", "common": common}
    finally:
        v6ray_cli("down", *common, timeout=180)


@pytest.fixture(scope="module")
def client(service) -> Client:
    return Client(ray.get_actor(QUEUE_ACTOR, namespace=NAMESPACE), namespace=NAMESPACE)


def test_actors_run_where_documented(ray_nodes, service):
    nodes, actors = node_ids(ray_nodes), alive_actor_nodes()
    assert actors[GATEWAY_ACTOR] == nodes["gateway"]  # the one node with v6ray_gateway
    # The queue, the scheduler and the simulator stay on the node that ran `up` (the head).
    assert actors[QUEUE_ACTOR] == actors[SCHEDULER_ACTOR] == nodes["head"]
    assert actors[SIMULATOR_ACTOR] == nodes["head"]


def test_writer_tasks_run_on_several_nodes_and_every_row_is_in_s3(ray_nodes, service, client):
    # Four waves, each finished before the next: at least four commits (one wave's results
    # may share a commit), so the rotation gives every one of the three nodes its turn.
    ids: list[str] = []
    for wave in range(4):
        batch = client.submit_many(bar_requests(4, first_day=4 * wave))
        for rid in batch:
            client.wait(rid, timeout=SETTLE_TIMEOUT)
        ids += batch
    assert_every_row_once(client, ids, service["data_dir"])
    gateway = ray.get_actor(GATEWAY_ACTOR, namespace=NAMESPACE)
    by_node = ray.get(gateway.stats.remote(), timeout=60)["counters"]["writer_commits_by_node"]
    ran_on = writer_task_nodes()
    print(f"commits sent per node {by_node}; writer tasks finished on {len(ran_on)} nodes")
    assert set(by_node) == set(node_ids(ray_nodes).values())  # every node had its turn
    assert len(ran_on) >= 2  # and Ray ran them there (soft affinity: a busy node may pass)


def test_losing_the_writer_node_mid_batch_loses_and_duplicates_nothing(ray_nodes, service, client):
    ids = client.submit_many(bar_requests(24, first_day=100))
    wait_for(
        lambda: any(client.get(rid).status == "SUCCESS" for rid in ids),
        SETTLE_TIMEOUT,
        "the first request to finish",
        interval=0.2,
    )
    ray_nodes.kill("writer")
    try:
        # The writer tasks of the lost node are retried on the others (idempotent MERGE).
        assert_every_row_once(client, ids, service["data_dir"])
    finally:
        ray_nodes.restart("writer")


def test_losing_the_gateway_node_waits_for_it_then_drains_the_backlog(ray_nodes, service, client):
    ray_nodes.kill("gateway")
    try:
        wait_for(
            lambda: (
                "waiting for a node with v6ray_gateway"
                in v6ray_cli("status", *service["common"]).stdout
            ),
            120,
            "status to say the gateway waits",
            interval=3.0,
        )
        ids = client.submit_many(bar_requests(10, first_day=200))  # queued meanwhile
        time.sleep(2.0)
        assert {client.get(rid).status for rid in ids} == {"PENDING"}
    finally:
        ray_nodes.restart("gateway")
    assert_every_row_once(client, ids, service["data_dir"])
    assert alive_actor_nodes()[GATEWAY_ACTOR] == node_ids(ray_nodes)["gateway"]
    frame = read_table("ib_requests", data_dir=service["data_dir"])
    assert frame.filter(pl.col("request_id").is_in(ids))["status"].to_list() == ["SUCCESS"] * 10


# ------------------------------------------------------------------ writers only


LANES = 4  # days the writers' batches are spread over
OVERLAP_BATCHES = 4  # a batch's keys overlap those of the writers' batches this close to it


def _batch_bars(writer: int, batch: int, writers: int, batches: int):
    """Two bars of one day, minutes ``k`` and ``k + writers * OVERLAP_BATCHES`` (``k =
    batch * writers + writer``, unique to the batch): a batch's key range overlaps those of
    the batches written about the same time into its day, and no older ones.

    delta-rs checks a MERGE against concurrent commits by partition (``market_bars``: the
    bar's UTC day) and key statistics, and reads only the files whose statistics overlap
    its keys. The day is ``(writer + batch) % LANES``: at any moment the eight writers are
    in four days, two at a time in each, with overlapping keys, so they do collide
    (conflicts retried and counted) while four commits can land at once, as a real mix of
    symbols and days would. Each batch's window slides forward, as a bar loader's requests
    do, so a MERGE reads the few recent files next to it, not the whole day's history."""
    k = batch * writers + writer
    day = DAY0 + timedelta(days=(writer + batch) % LANES)
    rows = [
        {"request_id": f"w{writer}-b{batch}", "symbol": "SPY", "bar_size": "1 min",
         "what_to_show": "TRADES", "timestamp": day + timedelta(minutes=minute), "open": 1.0,
         "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0}  # fmt: skip
        for minute in (k, k + writers * OVERLAP_BATCHES)  # < 1440: within the UTC day
    ]
    return to_table("market_bars", rows)


@ray.remote(num_cpus=0.25, scheduling_strategy="SPREAD")
def merge_batches(data_dir: str, writer: int, writers: int, batches: int) -> dict:
    """One writer task: ``batches`` MERGE commits of two rows each into one table."""
    from v6ray.storage.writer import merge_rows

    conflicts = 0
    for batch in range(batches):
        # Generous attempts: the test counts conflicts; it must not turn them into errors.
        result = merge_rows(
            data_dir, "market_bars", _batch_bars(writer, batch, writers, batches), max_attempts=200
        )
        conflicts += result["conflicts"]
    return {"node": ray.get_runtime_context().get_node_id(), "conflicts": conflicts}


def test_eight_writers_on_three_nodes_merge_into_one_table_losing_nothing(ray_nodes, s3_server):
    writers, batches = 8, CONCURRENT_BATCHES
    data_dir = f"s3://{make_bucket(s3_server)}/data"
    started = time.monotonic()
    results = ray.get(
        [merge_batches.remote(data_dir, w, writers, batches) for w in range(writers)], timeout=900
    )
    print(f"{writers} writers x {batches} batches: {time.monotonic() - started:.0f} s, "
          f"{sum(r['conflicts'] for r in results)} conflicts retried")

    assert len({r["node"] for r in results}) == 3  # SPREAD: every node wrote
    bars = read_table("market_bars", data_dir=data_dir)
    expected = {f"w{w}-b{b}" for w in range(writers) for b in range(batches)}
    assert bars.height == 2 * len(expected)
    assert dict(bars.group_by("request_id").len().iter_rows()) == dict.fromkeys(expected, 2)
    from deltalake import DeltaTable

    from v6ray.storage.location import storage_options_for
    from v6ray.storage.schemas import table_path

    path = table_path(data_dir, "market_bars")
    history = DeltaTable(path, storage_options=storage_options_for(path)).history()
    merges = [entry for entry in history if entry.get("operation") == "MERGE"]
    assert len(merges) == writers * batches  # zero lost commits: one version per batch
    assert sum(r["conflicts"] for r in results) > 0  # they did collide, and were counted


def test_derive_stats_fans_out_one_task_per_symbol_with_the_single_run_result(ray_nodes, s3_server):
    from v6ray.stats.derive import (
        combine_derive_results,
        daily_series,
        derive_and_write,
        submit_derive_tasks,
    )
    from v6ray.storage.writer import merge_rows

    bucket = make_bucket(s3_server)
    spread, single = f"s3://{bucket}/spread", f"s3://{bucket}/single"
    symbols = ["SPY", "QQQ", "IWM"]
    rows = []
    for n, symbol in enumerate(symbols):
        close = 100.0 * (n + 1)
        for day in range(30):
            close *= 1.01 if (day + n) % 3 else 0.985
            # The series statistics are computed from: daily RTH TRADES bars (daily_series).
            rows.append({**daily_series(symbol), "request_id": f"{symbol}-d",
                         "timestamp": T0 + timedelta(days=day),
                         "open": close, "high": close * 1.01, "low": close * 0.99,
                         "close": close, "volume": 1e6})  # fmt: skip
    for root in (spread, single):
        merge_rows(root, "market_bars", to_table("market_bars", rows))
    stamp = datetime(2026, 2, 1, tzinfo=UTC)

    refs = submit_derive_tasks(spread, symbols, computed_at=stamp)
    combined = combine_derive_results(ray.get(refs, timeout=300))
    derive_and_write(single, symbols, computed_at=stamp)  # the single-node run, in-process

    assert combined["tasks"] == 3 and combined["symbols"] == sorted(symbols)
    fanned = read_table("derived_statistics", data_dir=spread).sort("symbol", "date")
    alone = read_table("derived_statistics", data_dir=single).sort("symbol", "date")
    assert fanned.height == alone.height == combined["rows"] > 60
    assert fanned.equals(alone)
