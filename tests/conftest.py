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

    from v6ray.service.cluster import use_single_machine_mode

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    use_single_machine_mode()  # without it Ray binds its GCS and raylet on every interface
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


# ------------------------------------------------------------------ S3 (moto's server)

S3_TEST_REGION = "us-east-1"
S3_TEST_KEY_ID = "v6ray-test-key-id"  # moto accepts any credentials
S3_TEST_SECRET = "v6ray-test-secret-access-key"


# moto's standalone server (``python -m moto.server``) with one change: writes are served
# one at a time. Its put-if-absent is a check, then a put (moto/s3/responses.py: the
# ``If-None-Match == "*"`` test on get_object, then the store), and its server answers on
# threads, so two racing commits of one Delta version could both "succeed", the second
# overwriting the first; real S3 makes that check atomic, and serialising the writes gives
# the tests the same guarantee. Reads stay concurrent.
_MOTO_SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.server import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
writes = threading.Lock()

def serialised_writes(environ, start_response):
    if environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
        with writes:
            return list(app(environ, start_response))
    return app(environ, start_response)

run_simple("127.0.0.1", int(sys.argv[1]), serialised_writes, threaded=True)
"""


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on 127.0.0.1 (moto's, see ``_MOTO_SERVER``) for the
    session; yields its endpoint URL and stops it at the end."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", _MOTO_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def s3_test_env(endpoint: str) -> dict[str, str]:
    """The ``AWS_*`` variables that point deltalake (and boto3) at the test server."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": S3_TEST_REGION,
        "AWS_ACCESS_KEY_ID": S3_TEST_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_TEST_SECRET,
        "AWS_ALLOW_HTTP": "true",
    }


@pytest.fixture
def s3_data_dir(s3_server, monkeypatch) -> str:
    """``s3://<fresh bucket>/data`` on the test server, with this process's ``AWS_*``
    environment pointing at it (as a user's shell would)."""
    for name, value in s3_test_env(s3_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("V6RAY_STORAGE_OPTIONS", raising=False)
    return f"s3://{make_bucket(s3_server)}/data"


def make_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the test server; its name."""
    import boto3

    bucket = f"v6ray-{uuid.uuid4().hex[:12]}"  # 3-63 chars, lowercase: a valid bucket name
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_TEST_REGION,
        aws_access_key_id=S3_TEST_KEY_ID,
        aws_secret_access_key=S3_TEST_SECRET,
    ).create_bucket(Bucket=bucket)
    return bucket
