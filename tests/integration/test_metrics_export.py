"""v6ray's metrics reach Ray's Prometheus endpoint of the node, and move with the work.

A burst of requests goes through a real queue, gateway and writer tasks (simulator in
process); then the node's metrics export port is scraped until the numbers arrive
(Ray's agent exports every few seconds). Series are picked by the Ray worker that
recorded them, so earlier tests' actors in this session cannot blur the counts.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from v6ray.gateway.testing import GatewayHarness

pytestmark = pytest.mark.slow
BURST = 24
EXPORT_TIMEOUT = 60.0


def scrape() -> list[tuple[str, dict[str, str], float]]:
    port = next(n["MetricsExportPort"] for n in ray.nodes() if n["Alive"])
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name.startswith("ray_v6ray_")
    ]


def total(samples, name: str, worker: str | None = None, **labels: str) -> float:
    return sum(
        value for n, got, value in samples
        if n == name and (worker is None or got.get("WorkerId") == worker)
        and all(got.get(k) == v for k, v in labels.items())
    )


def worker_id(actor) -> str:
    return ray.get(actor.__ray_call__.remote(
        lambda self: ray.get_runtime_context().get_worker_id()), timeout=30)


def scrape_until(check, timeout: float = EXPORT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape()
        problems = check(samples)
        if not problems or time.monotonic() > deadline:
            return samples, problems
        time.sleep(1.0)


def test_a_burst_of_requests_moves_the_metrics(ray_namespace, data_dir):
    items = [{"request_type": "market_bars", "symbol": "SPY", "priority": 3,
              "parameters": {"duration": "1 D", "bar_size": "1 day",
                             "end": f"2024-03-{day:02d}T21:00:00+00:00"}}
             for day in range(1, BURST + 1)]
    before = scrape()
    rows_before = total(before, "ray_v6ray_writer_rows_total", table="market_bars")
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.05) as h:
        finals = h.wait_all(h.submit_many(items), timeout=120)
        assert {f.status.value for f in finals} == {"SUCCESS"}
        queue, gateway = worker_id(h.queue), worker_id(h.gateway)
        sent = h.gateway_stats()["pacing"]["messages_sent"]
        bars = h.read("market_bars").height  # distinct bars: weekend ends repeat Friday's

        def check(samples) -> list[str]:
            expect = {
                ("ray_v6ray_requests_submitted_total", queue,
                 (("request_type", "market_bars"), ("priority", "3"))): BURST,
                ("ray_v6ray_requests_finished_total", queue,
                 (("request_type", "market_bars"), ("status", "SUCCESS"))): BURST,
                ("ray_v6ray_request_latency_seconds_count", queue,
                 (("request_type", "market_bars"), ("status", "SUCCESS"))): BURST,
                ("ray_v6ray_submit_durable_seconds_count", queue, ()): BURST,
                ("ray_v6ray_queue_depth", queue,
                 (("status", "SUCCESS"), ("priority", "3"))): BURST,
                ("ray_v6ray_queue_depth", queue,
                 (("status", "PENDING"), ("priority", "3"))): 0,
                ("ray_v6ray_gateway_connection", gateway, (("state", "connected"),)): 1,
                ("ray_v6ray_pacing_limit", gateway, (("budget", "lines"),)):
                    h.gateway_config.line_budget,
                ("ray_v6ray_ib_messages_sent_total", gateway, ()): sent,
            }
            problems = [
                f"{name}{dict(labels)} = {got}, expected {want}"
                for (name, worker, labels), want in expect.items()
                if (got := total(samples, name, worker, **dict(labels))) != want
            ]
            rows = total(samples, "ray_v6ray_writer_rows_total", table="market_bars")
            if rows < rows_before + bars:
                problems.append(f"writer rows {rows} < {rows_before} + {bars}")
            commits = total(samples, "ray_v6ray_writer_commit_seconds_count",
                            table="market_bars")
            if not commits:
                problems.append("no writer commit latency recorded")
            return problems

        samples, problems = scrape_until(check)
    assert not problems, problems
    # Every series carries its tags; none is named outside the catalog.
    from v6ray.observability.catalog import exported_names

    names = {name for name, _, _ in samples}
    assert names <= exported_names(), names - exported_names()
    per_budget = defaultdict(float)
    for name, labels, value in samples:
        if name == "ray_v6ray_pacing_used" and labels.get("WorkerId") == gateway:
            per_budget[labels["budget"]] = value
    assert set(per_budget) == {"messages", "small_bar", "historical_open", "lines"}
    assert bars > BURST // 2
