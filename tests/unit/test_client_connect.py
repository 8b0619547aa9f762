"""``v6ray.connect`` picks how to join Ray (no Ray started: ``ray.init`` is faked).

The defect behind these: a process that imported Ray without the single-machine switch
(a notebook opened before `v6ray up`) and then connected to the loopback address `up`
printed had Ray rewrite 127.0.0.1 to the machine's routable IP and retry it for ~14 min.
"""

from __future__ import annotations

import socket
import time

import pytest
import ray
import ray._private.ray_constants as ray_constants

import v6ray
from v6ray.service import cluster
from v6ray.service.cluster import free_port

SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@pytest.fixture
def fresh_process(monkeypatch, tmp_path):
    """Ray imported without the single-machine switch, no v6ray service recorded."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    monkeypatch.setenv("V6RAY_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cluster, "apply_auth_mode", lambda mode: None)


def no_queue(name, namespace):
    raise ValueError(f"Failed to look up actor {name!r}")


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("how", ["argument", "RAY_ADDRESS"])
def test_a_loopback_address_nobody_answers_fails_in_seconds(fresh_process, monkeypatch, how):
    address = f"127.0.0.1:{free_port()}"
    if how == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    started = time.monotonic()
    with pytest.raises(v6ray.NotRunning) as info:  # ray.init would raise AssertionError
        v6ray.connect(address if how == "argument" else "auto")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert f"no Ray cluster answers at {address}" in message
    assert "v6ray up" in message and "\n" not in message


@pytest.mark.parametrize("how", ["argument", "RAY_ADDRESS"])
def test_a_loopback_address_is_joined_as_loopback(fresh_process, monkeypatch, listener, how):
    seen: dict[str, object] = {}

    def init(**kwargs):
        seen.update(kwargs, switch=ray_constants.ENABLE_RAY_CLUSTER)
        raise RuntimeError("stop here")

    monkeypatch.setattr(ray, "init", init)
    if how == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", listener)
    with pytest.raises(RuntimeError, match="stop here"):
        v6ray.connect(listener if how == "argument" else "auto")
    assert seen["address"] == listener
    assert seen["switch"] is False  # Ray keeps 127.0.0.1 instead of the routable IP


def test_a_cluster_without_the_queue_is_left_so_a_later_connect_can_look_again(
    fresh_process, monkeypatch
):
    calls: list[str] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append("init"))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(ray, "get_actor", no_queue)
    with pytest.raises(v6ray.NotRunning, match="RequestQueue"):
        v6ray.connect()  # Ray's "auto": whatever cluster runs on this machine
    assert calls == ["init", "shutdown"]


def test_a_process_already_in_ray_stays_there(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(ray, "get_actor", no_queue)
    with pytest.raises(v6ray.NotRunning):
        v6ray.connect(namespace="v6ray-test-nothing-here")
    assert calls == []  # the caller's own ray.init is not undone


def test_the_service_commands_join_only_a_host_port_address(fresh_process):
    # ray.init is the refusing fake of conftest: reaching it would raise AssertionError.
    for address in ("auto", "ray://127.0.0.1:10001"):
        with pytest.raises(v6ray.NotRunning, match="no Ray cluster answers"):
            cluster.connect(address, namespace="v6ray-test")


def test_v6ray_connect_hands_rays_own_addresses_to_ray_as_they_are(fresh_process, monkeypatch):
    seen: list[dict[str, object]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(kwargs))
    assert cluster.connect("auto", namespace="v6ray-test", ray_resolves=True) is True
    assert seen == [{"address": "auto", "namespace": "v6ray-test", "log_to_driver": False}]


def test_connect_keeps_a_process_already_in_ray(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert cluster.connect("127.0.0.1:1", namespace="v6ray-test") is False
