"""``v6ray.connect`` without a Ray cluster (no Ray started: ``ray.init`` is faked)."""

from __future__ import annotations

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
