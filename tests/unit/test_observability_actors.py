"""`v6ray status`'s actor rows: node, pid, restarts, uptime (pure merge and rendering)."""

from __future__ import annotations

from v6ray.cli.status import to_text
from v6ray.observability.actors import merge, render_lines

NOW = 1_800_000_000.0
ACTORS = [
    {"name": "IBGateway", "state": "ALIVE", "pid": 41, "node_id": "n1" * 28,
     "num_restarts": 2, "repr_name": "IBGateway[IB 127.0.0.1:4002 client 17]"},
    {"name": "RequestQueue", "state": "RESTARTING", "pid": 0, "node_id": "n2" * 28,
     "num_restarts": 1},
    {"name": "", "state": "ALIVE", "pid": 7},  # an unnamed actor of someone else: skipped
]
WORKERS = [{"pid": 41, "start_time_ms": (NOW - 300) * 1000}]


def test_rows_join_actor_worker_and_node():
    rows = merge(ACTORS, WORKERS, {"n1" * 28: "10.0.0.5"}, NOW)
    assert [r["name"] for r in rows] == ["IBGateway", "RequestQueue"]
    gateway, queue = rows
    assert gateway == {"name": "IBGateway", "state": "ALIVE", "node": "10.0.0.5", "pid": 41,
                       "restarts": 2, "uptime_seconds": 300.0,
                       "repr": "IBGateway[IB 127.0.0.1:4002 client 17]"}
    assert queue["pid"] is None and queue["uptime_seconds"] is None
    assert queue["node"] == ("n2" * 28)[:12]  # a node Ray no longer lists: its id


def test_status_text_has_an_actor_line_each():
    rows = merge(ACTORS, WORKERS, {"n1" * 28: "10.0.0.5"}, NOW)
    text = to_text({"queue": {}, "gateway": {}, "actors": rows})
    assert "IBGateway        ALIVE      node 10.0.0.5 · pid 41 · restarts 2 · up 5.0min" in text
    assert "RequestQueue     RESTARTING node n2n2n2n2n2n2 · pid - · restarts 1 · up -" in text


def test_status_says_why_there_is_no_actor_table():
    assert render_lines({"error": "no dashboard"})[-1] == "  (not available: no dashboard)"
