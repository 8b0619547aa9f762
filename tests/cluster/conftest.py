"""A real three-node Ray cluster per test module, with its data on the S3 test server.

Nodes (each a separate ``ray start --block`` raylet on 127.0.0.1, 1 CPU each):
``head`` (GCS, dashboard; `v6ray up` and this test process attach here), ``gateway``
(advertises ``v6ray_gateway``) and ``writer`` (plain CPU). Every node gets the S3 server's
``AWS_*`` variables in its environment, as a real cluster's nodes would from their shell
or instance profile, and Ray token auth with a token of the module's own.

This test process connects to the cluster as a driver for the module and disconnects at
the end; the cluster tests are collected before every other folder (``tests/cluster``
sorts first), so no other Ray connection exists in the process yet.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.cluster.raylets import LocalRayCluster
from tests.conftest import make_bucket, s3_test_env
from v6ray.constants import GATEWAY_NODE_RESOURCE

NAMESPACE_PREFIX = "v6ray-cluster-test"


@pytest.fixture(scope="module")
def ray_nodes(tmp_path_factory, s3_server):
    """The running ``LocalRayCluster``; this process is its driver while the module runs."""
    import ray

    from v6ray.service import cluster as v6cluster
    from v6ray.service.ray_private import refresh_ray_config

    if ray.is_initialized():  # pragma: no cover - a collection-order mistake, say so
        pytest.fail("tests/cluster must run before any other Ray connection in this process")
    workdir = tmp_path_factory.mktemp("raylets")
    token = workdir / "auth_token"
    v6cluster.create_token_file(token)
    env = {
        **s3_test_env(s3_server),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        "V6RAY_METRICS": "0",  # metrics export is tested elsewhere; spare the 2 cores
    }
    # Workers import v6ray (and this test package, for the tasks tests define) from here.
    import v6ray

    repo = str(Path(v6ray.__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    nodes = LocalRayCluster(workdir, {**os.environ, **env, "PYTHONPATH": pythonpath})
    with pytest.MonkeyPatch.context() as environ:
        for name, value in env.items():
            environ.setenv(name, value)
        try:
            nodes.start({"gateway": {GATEWAY_NODE_RESOURCE: 1}, "writer": {}})
            v6cluster.connect(nodes.address, namespace=f"{NAMESPACE_PREFIX}-{uuid.uuid4().hex[:6]}")
            yield nodes
        finally:
            ray.shutdown()
            nodes.shutdown()
    refresh_ray_config()  # the auth mode above must not outlive the module


@pytest.fixture
def cluster_s3_dir(ray_nodes, s3_server) -> str:
    """``s3://<fresh bucket>/data`` for one test."""
    return f"s3://{make_bucket(s3_server)}/data"


def node_ids(ray_nodes: LocalRayCluster) -> dict[str, str]:
    """Node name (head, gateway, writer) → Ray node id of the live node of that name."""
    import ray

    from v6ray.constants import GATEWAY_NODE_RESOURCE

    found: dict[str, str] = {}
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        resources = node.get("Resources") or {}
        if node.get("IsHead") or "node:__internal_head__" in resources:
            found["head"] = node["NodeID"]
        elif resources.get(GATEWAY_NODE_RESOURCE):
            found["gateway"] = node["NodeID"]
        else:
            found["writer"] = node["NodeID"]
    return found
