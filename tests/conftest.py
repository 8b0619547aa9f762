"""Fixtures shared by every test folder.

One Ray cluster per test session (``num_cpus=2``, no dashboard, loopback, ephemeral ports),
started only when a test asks for ``ray_cluster``; each test gets its own Ray namespace so
named singleton actors (RequestQueue, IBGateway, ...) of one test never meet another's.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace="v6ray-tests",
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
    )
    yield context
    ray.shutdown()


@pytest.fixture
def ray_namespace(ray_cluster) -> str:
    """A fresh namespace for the named actors of one test; they are killed afterwards."""
    import ray

    namespace = f"v6ray-test-{uuid.uuid4().hex[:10]}"
    yield namespace
    from ray.util.state import list_actors

    try:
        actors = list_actors(
            filters=[("state", "=", "ALIVE")], limit=1000, raise_on_missing_output=False
        )
    except Exception:  # the state API is best effort; actors also die with the session
        actors = []
    for actor in actors:
        if actor.get("ray_namespace") == namespace and actor.get("name"):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(actor["name"], namespace=namespace), no_restart=True)


@pytest.fixture
def data_dir(tmp_path) -> str:
    path = tmp_path / "data"
    path.mkdir()
    return str(path)
