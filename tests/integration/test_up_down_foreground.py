"""`v6ray up` in the foreground: a live status line, then a graceful stop on SIGTERM
(as Ctrl-C or a service manager would send), leaving no Ray process of its cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import v6ray
from v6ray.service.cluster import OwnedHead, cluster_processes

pytestmark = pytest.mark.slow

REPO = str(Path(v6ray.__file__).resolve().parent.parent)


def _head(state: dict) -> OwnedHead:
    return OwnedHead(
        state["head_pid"],
        state["ray_address"],
        state["dashboard_url"],
        state["head_temp_dir"],
        state["head_log"],
        state["auth_mode"],
    )


def test_foreground_up_stops_gracefully_on_sigterm(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("V6RAY_DATA_DIR", "V6RAY_RAY_ADDRESS", "RAY_ADDRESS"):
        env.pop(var, None)
    state_file = tmp_path / "_v6ray" / "service.json"
    # A state file left by a crashed `up` (its head long gone) must not block a new one.
    gone = subprocess.Popen(["true"])
    gone.wait()
    state_file.parent.mkdir()
    state_file.write_text(json.dumps({
        "base_data_dir": str(tmp_path), "results_dir": str(tmp_path / "simulated"),
        "ray_address": "127.0.0.1:1", "owns_cluster": True, "simulate": True,
        "time_scale": 0.05, "ib_host": "127.0.0.1", "ib_port": 1, "client_id": 17,
        "head_pid": gone.pid, "head_temp_dir": "/tmp/v6ray-crashed-long-ago",
    }))  # fmt: skip
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "v6ray", "up", "--simulate", "--data-dir", str(tmp_path),
             "--time-scale", "0.05"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    state = None
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and "queue " not in log.read_text():
            assert up.poll() is None, log.read_text()
            time.sleep(1)
        text = log.read_text()
        assert "cleaning up a service that is no longer running" in text, text
        assert "running in the foreground" in text, text
        assert "queue " in text and "in flight" in text, text  # the live status line
        state = json.loads(state_file.read_text())
        assert state["up_pid"] == up.pid

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=150) == 0, log.read_text()
        text = log.read_text()
        assert "IBGateway: shutdown done" in text and "v6ray stopped" in text, text
        assert "warning" not in text and "Traceback" not in text, text
        assert not state_file.exists()
        # Ray's processes exit on their own once signalled; give the slowest a moment.
        head = _head(state)
        deadline = time.monotonic() + 15
        while cluster_processes(head) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not [_describe(pid) for pid in cluster_processes(head)]
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        if state:
            for pid in cluster_processes(_head(state)):
                os.kill(pid, signal.SIGKILL)


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} [{state}] {cmdline.decode(errors='replace')[:160]}"
