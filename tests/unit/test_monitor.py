"""The monitor's snapshot (pure) and its HTTP app: read-only, own assets only, token when
asked for (aiohttp's test server on loopback, no Ray)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from v6ray.monitor import deploy
from v6ray.monitor.snapshot import History, build_snapshot
from v6ray.monitor.web import STATIC, make_app

QUEUE = {
    "depth": {"PENDING": 5, "PROCESSING": 2, "SUCCESS": 40, "FAILED": 1, "CANCELLED": 0},
    "by_priority": {"1": {"PENDING": 1, "PROCESSING": 1}, "2": {"PENDING": 0},
                    "3": {"PENDING": 4, "PROCESSING": 1}},
    "in_flight": 2, "oldest_pending_age_s": 3.14159, "submitted_total": 48,
    "recent_failures": [{"request_id": f"r{i}", "request_type": "market_bars", "symbol": "SPY",
                         "status": "PENDING", "attempts": 1, "error_message": f"IB error 162 #{i}",
                         "updated_at": "2026-01-02T03:04:05"} for i in range(25)],
}
GATEWAY = {
    "state": "connected", "circuit": "closed", "host": "127.0.0.1", "port": 4002,
    "in_flight": 2, "ib_errors": {"2104": 1, "162": 3}, "counters": {"reconnects": 1},
    "pacing": {"messages_per_window": 45, "messages_available": 40, "messages_sent": 100,
               "small_bar_limit": 60, "small_bar_available": 60, "historical_open": 1,
               "historical_open_limit": 45, "lines_in_use": 3, "line_budget": 95,
               "peak_lines": 9},
}


def test_snapshot_holds_what_the_page_shows():
    history = History()
    history.add(1000.0, QUEUE, GATEWAY)
    later = {**QUEUE, "depth": {**QUEUE["depth"], "SUCCESS": 50}}
    history.add(1002.0, later, {**GATEWAY, "pacing": {**GATEWAY["pacing"], "messages_sent": 140}})
    snap = build_snapshot(7, 1002.0, later, GATEWAY, history, {"simulate": True})
    assert snap["seq"] == 7 and snap["service"]["mode"] == "SIMULATED"
    assert snap["connection"]["state"] == "connected"
    assert snap["connection"]["ib"] == "127.0.0.1:4002"
    assert snap["queue"]["depth"]["PENDING"] == 5
    assert snap["queue"]["oldest_pending_age_s"] == 3.1
    assert snap["throughput"] == {"finished_per_s": 5.0, "messages_per_s": 20.0}
    assert snap["in_flight"] == {"queue": 2, "gateway": 2}
    assert {g["budget"]: (g["used"], g["limit"]) for g in snap["pacing"]} == {
        "messages": (5, 45), "small_bar": (0, 60), "historical_open": (1, 45), "lines": (3, 95)}
    assert snap["lines"] == {"in_use": 3, "budget": 95, "peak": 9}
    assert snap["ib_errors"] == {"2104": 1, "162": 3}
    assert len(snap["failures"]) == 20 and snap["failures"][0]["request_id"] == "r24"
    chart = snap["history"]
    assert chart["t"] == [1000.0, 1002.0]
    assert chart["series"]["PENDING 3"] == [4, 4]
    assert chart["series"]["PROCESSING 1"] == [1, 1]


def test_history_keeps_fifteen_minutes_and_one_point_per_two_seconds():
    history = History()
    for second in range(0, 20 * 60):
        history.add(float(second), QUEUE, GATEWAY)
    t = history.chart()["t"]
    assert t[-1] - t[0] <= 15 * 60
    assert len(t) == 15 * 60 // 2 + 1


def test_a_gateway_that_is_not_running_still_renders():
    snap = build_snapshot(1, 5.0, {}, {"state": "unreachable", "error": "gone"}, History())
    assert snap["connection"]["state"] == "unreachable"
    assert snap["connection"]["last_error"] == "gone"
    assert snap["pacing"] == [] and snap["failures"] == []


class Source:
    def __init__(self) -> None:
        self.snapshots = {1: {"seq": 1, "n": 10}, 2: {"seq": 2, "n": 11}}

    def latest(self):
        return self.snapshots[max(self.snapshots)]

    def by_seq(self, seq):
        return self.snapshots.get(seq)


def run_client(scenario, token=None):
    async def main():
        client = TestClient(TestServer(make_app(Source(), token), host="127.0.0.1"))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_status_api_latest_and_by_seq():
    async def scenario(client):
        latest = await (await client.get("/api/status")).json()
        first = await (await client.get("/api/status?seq=1")).json()
        gone = await client.get("/api/status?seq=99")
        bad = await client.get("/api/status?seq=x")
        return latest, first, gone.status, bad.status

    assert run_client(scenario) == ({"seq": 2, "n": 11}, {"seq": 1, "n": 10}, 404, 400)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_nothing_can_be_changed_through_the_page(method):
    async def scenario(client):
        return [(await client.request(method, path)).status
                for path in ("/", "/api/status", "/static/monitor.js", "/api/submit")]

    statuses = run_client(scenario)
    assert statuses[:3] == [405, 405, 405] and statuses[3] in (404, 405)


def test_page_and_assets_come_from_this_server_only():
    async def scenario(client):
        page = await client.get("/")
        js = await client.get("/static/monitor.js")
        css = await client.get("/static/monitor.css")
        escape = await client.get("/static/..%2Fweb.py")
        return page, await page.text(), js.status, css.status, escape.status

    page, html, js, css, escape = run_client(scenario)
    assert page.status == 200 and js == 200 and css == 200 and escape == 404
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    # Every URL the page or its assets name is local: no CDN, no font or script elsewhere.
    for text in (html, (STATIC / "monitor.js").read_text(), (STATIC / "monitor.css").read_text()):
        named = re.findall(r"(?:src|href)=\"([^\"]+)\"", text)
        named += re.findall(r"url\(([^)]+)\)", text)
        named += re.findall(r"(?:https?:)?//[\w.-]+[^\s\"')]*", text)
        assert "/static/monitor.js" in named or "monitor.js" not in text
        for url in named:
            assert url.startswith(("/", "data:")) or url == "http://www.w3.org/2000/svg", url
            assert not url.startswith("//") or url.startswith("//www.w3.org/2000/svg"), url


def test_a_token_guards_every_route_when_set():
    async def scenario(client):
        denied = [(await client.get(p)).status for p in ("/", "/api/status")]
        wrong = (await client.get("/api/status", headers={"Authorization": "Bearer nope"})).status
        bearer = (await client.get("/api/status",
                                   headers={"Authorization": "Bearer s3cret"})).status
        link = await client.get("/?token=s3cret")  # the link sets a cookie for the page's fetches
        with_cookie = (await client.get("/api/status")).status
        return denied, wrong, bearer, link.status, with_cookie

    assert run_client(scenario, token="s3cret") == ([401, 401], 401, 200, 200, 200)


def test_port_choice(monkeypatch):
    taken = deploy.choose_port("127.0.0.1", 0)
    assert taken > 0
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(deploy.V6RayError, match="--monitor-port"):
            deploy.choose_port("127.0.0.1", busy)
        monkeypatch.setattr(deploy.constants, "DEFAULT_MONITOR_PORT", busy)
        assert deploy.choose_port("127.0.0.1", None) != busy  # default taken: any free one


def test_token_file_is_private(tmp_path):
    path = deploy.make_token_file(str(tmp_path))
    import os

    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert len(Path(path).read_text()) >= 24


def test_dashboard_token_hint_is_the_command_for_this_cluster():
    assert deploy.dashboard_token_hint(None, {}) is None
    assert deploy.dashboard_token_hint("token", {}) == "ray get-auth-token"
    assert deploy.dashboard_token_hint("token", {"RAY_AUTH_TOKEN_PATH": "/k/t"}) == (
        "RAY_AUTH_TOKEN_PATH=/k/t ray get-auth-token")


def test_a_sampling_error_restarts_the_sampler_and_the_page_keeps_updating():
    import time

    from v6ray.monitor import server
    from v6ray.service.cluster import free_port

    class FakeStatsMonitor(server.MonitorServer):
        """Never asks Ray: its thread outlives the test until its loops are stopped."""

        failures = [ValueError("a garbled stats answer")]  # raised once, by sample 2

        def _stats(self, name):
            if name == server.GATEWAY_ACTOR and self._seq == 1 and self.failures:
                raise self.failures.pop()
            return {"state": "connected"}

    monitor = FakeStatsMonitor("127.0.0.1", free_port(), sample_seconds=0.01)
    try:
        assert monitor.url(timeout=30).startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 10
        while (monitor.latest() or {}).get("seq", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert monitor.latest()["seq"] >= 3  # sampled again after the error
        sampler = monitor._loops.stats()[server.SAMPLER]
        assert sampler["restarts"] == 1 and "a garbled stats answer" in sampler["last_error"]
    finally:  # end the server thread: stopping its loops ends its event loop
        loop = monitor._loops._tasks[server.SAMPLER].get_loop()
        asyncio.run_coroutine_threadsafe(monitor._loops.stop(), loop).result(timeout=10)
