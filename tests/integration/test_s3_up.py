"""`v6ray up --simulate --data-dir s3://...`: the whole service on the S3 server, and no
secret anywhere it could leak to.

The AWS secret is a distinctive canary (moto takes any credentials). `up` starts its own
Ray cluster, whose workers read the credentials from the environment they inherit, as on
a real node; the test then looks for the canary in every output of every command, in
every object of the bucket and in every file of the local state folder (state record,
scheduler state, Ray's session logs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

import v6ray
from v6ray.storage.location import STATE_DIR_VAR, local_state_dir
from v6ray.storage.reader import read_table

pytestmark = pytest.mark.slow

REPO = str(Path(v6ray.__file__).resolve().parent.parent)
FILL_TIMEOUT = 300.0


def v6ray_cli(*argv: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("V6RAY_DATA_DIR", "V6RAY_RAY_ADDRESS", "RAY_ADDRESS", "V6RAY_DEBUG"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "v6ray", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def bucket_objects(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ["AWS_REGION"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[item["Key"]] = body
    return objects


@pytest.mark.timeout(900)
def test_up_on_s3_fills_the_tables_and_leaks_no_secret(s3_data_dir, tmp_path, monkeypatch):
    canary = f"canary-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    monkeypatch.setenv(STATE_DIR_VAR, str(tmp_path / "state"))
    outputs: list[str] = []

    def run(*argv: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
        done = v6ray_cli(*argv, timeout=timeout)
        outputs.extend([done.stdout, done.stderr])
        return done

    up = run("up", "--simulate", "--detach", "--data-dir", s3_data_dir, "--time-scale", "0.05")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        data = f"{s3_data_dir}/simulated"
        assert f"data:          {data}" in up.stdout
        state_file = Path(local_state_dir(s3_data_dir)) / "service.json"
        state = json.loads(state_file.read_text())
        assert state["base_data_dir"] == s3_data_dir and state["results_dir"] == data

        deadline = time.monotonic() + FILL_TIMEOUT
        counts: dict[str, int] = {}
        wanted = ("ib_requests", "market_bars", "futures_snapshots", "positions")
        while time.monotonic() < deadline:
            counts = {name: read_table(name, data_dir=data).height for name in wanted}
            if all(counts.values()):
                break
            time.sleep(3)
        assert all(counts.values()), f"tables on S3 still empty: {counts}"

        status = run("status", "--json", "--data-dir", s3_data_dir)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["queue"]["depth"]["SUCCESS"] > 0
        assert run("status", "--data-dir", s3_data_dir).returncode == 0
        shown = run("show", "market_bars", "--limit", "2", "--data-dir", s3_data_dir)
        assert shown.returncode == 0 and "row(s) in market_bars" in shown.stderr
        compacted = run("compact", "--data-dir", s3_data_dir, timeout=400)
        assert compacted.returncode == 0, compacted.stderr
        assert "ib_requests: compacted by the queue" in compacted.stdout
    finally:
        down = run("down", "--data-dir", s3_data_dir, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(canary in text for text in outputs)

    bucket = s3_data_dir.split("/")[2]
    objects = bucket_objects(bucket)
    assert any(key.endswith(".parquet") for key in objects)
    assert not [key for key, body in objects.items() if canary.encode() in body]
    leaked = [
        str(path)
        for path in (tmp_path / "state").rglob("*")
        if path.is_file() and canary.encode() in path.read_bytes()
    ]
    assert not leaked
