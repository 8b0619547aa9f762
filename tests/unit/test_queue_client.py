"""``v6ray.connect`` without a Ray cluster (no Ray started: ``ray.init`` is faked)."""

from __future__ import annotations

import threading

import pytest
import ray

import v6ray


def test_connect_without_a_cluster_raises_not_running(monkeypatch):
    def no_cluster(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(v6ray.NotRunning) as info:
        v6ray.connect(address="auto")
    assert "no Ray cluster" in str(info.value)
    assert "v6ray up" in str(info.value)  # says how to fix it


class RecordingHandle:
    """A queue handle that records every call (none should happen for bad input)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name):
        def remote(*args):
            self.calls.append(name)
            raise AssertionError(f"{name} reached the queue")

        return type("Method", (), {"remote": staticmethod(remote)})


def test_bad_input_is_refused_in_the_client_before_any_call():
    from v6ray.client.api import Client
    from v6ray.requests.model import MAX_SUBMIT_MANY

    handle = RecordingHandle()
    client = Client(handle)
    with pytest.raises(v6ray.InvalidRequest) as info:  # not JSON, and Ray could not ship it
        client.submit("market_bars", "SPY", parameters={"lock": threading.Lock()})
    assert info.value.field == "parameters"
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit("market_bars", "SPY", parameters={"end": "0001-01-01T00:00:00+01:00"})
    assert info.value.field == "parameters.end"
    item = {"request_type": "futures_snapshot", "symbol": "ES"}
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit_many([item] * (MAX_SUBMIT_MANY + 1))
    assert info.value.field == "items"
    with pytest.raises(v6ray.InvalidRequest) as info:
        client.submit_many(iter([item, {**item, "symbol": "ﬀ"}]))
    assert info.value.field == "items[1].symbol"
    assert handle.calls == []


def test_the_client_sends_checked_plain_submissions(monkeypatch):
    from v6ray.client.api import Client

    sent = []

    class Handle:
        def __getattr__(self, name):
            def remote(items):
                sent.append((name, items))
                return [f"id-{i}" for i in range(len(items))]

            return type("Method", (), {"remote": staticmethod(remote)})

    monkeypatch.setattr(ray, "get", lambda ref, timeout=None: ref)
    client = Client(Handle())
    assert client.submit("MARKET_BARS", " spy ", priority="background",
                         parameters='{"bar_size": "1 hours"}') == "id-0"
    assert client.submit_many(({"request_type": "futures_snapshot", "symbol": "es"},)) == ["id-0"]
    assert sent[0] == ("submit_each", [{
        "request_type": "market_bars", "symbol": "SPY", "priority": 3,
        "parameters": {"duration": "5 D", "bar_size": "1 hour", "what_to_show": "TRADES",
                       "use_rth": True},
        "result_table": "market_bars"}])
    assert sent[1][0] == "submit_many" and sent[1][1][0]["symbol"] == "ES"
