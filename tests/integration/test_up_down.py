"""The README's first commands, as a newcomer runs them: `v6ray up --simulate --detach`,
watch every table fill through the queue, `status --json`, `submit --wait`, `down`.

Everything runs in subprocesses (`python -m v6ray ...`) against a Ray cluster `up` starts
and owns; this test process never calls ``ray.init``. The module-scoped service is shared
by the tests below and always taken down, even when a test fails.
"""

from __future__ import annotations

import contextlib
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
from v6ray.storage.reader import read_table

pytestmark = pytest.mark.slow

REPO = str(Path(v6ray.__file__).resolve().parent.parent)
TIME_SCALE = "0.05"
FILL_TIMEOUT = 240.0  # every table filled by the scheduler's first round, on 2 busy cores
RESULT_TABLES = (
    "option_snapshots",
    "futures_snapshots",
    "market_bars",
    "positions",
    "derived_statistics",
)


def v6ray_cli(*argv: str, timeout: float = 180.0, check: bool = False, **popen: object):
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("V6RAY_DATA_DIR", "V6RAY_RAY_ADDRESS", "RAY_ADDRESS", "V6RAY_DEBUG"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "v6ray", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **popen,
    )
    if check:
        assert done.returncode == 0, f"v6ray {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done


def state_of(base: Path) -> dict:
    return json.loads((base / "_v6ray" / "service.json").read_text())


def head_of(state: dict) -> OwnedHead:
    return OwnedHead(
        pid=state["head_pid"],
        gcs_address=state["ray_address"],
        dashboard_url=state["dashboard_url"],
        temp_dir=state["head_temp_dir"],
        log_path=state["head_log"],
        auth_mode=state["auth_mode"],
    )


def kill_cluster_hard(state: dict | None) -> None:
    """Last resort after a failed test: end exactly this cluster's processes."""
    if not state or not state.get("head_pid"):
        return
    head = head_of(state)
    for pid in cluster_processes(head):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    base = tmp_path_factory.mktemp("v6ray-up")
    started = time.monotonic()
    done = v6ray_cli(
        "up", "--simulate", "--detach", "--data-dir", str(base), "--time-scale", TIME_SCALE
    )
    state = None
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SIMULATED" in done.stdout
        assert "Ray dashboard: http://127.0.0.1:" in done.stdout
        state = state_of(base)
        yield {"base": base, "state": state, "up_seconds": time.monotonic() - started,
               "up_output": done.stdout}  # fmt: skip
    finally:
        if (base / "_v6ray" / "service.json").exists():
            state = state or state_of(base)
            v6ray_cli("down", "--data-dir", str(base), timeout=180)
        kill_cluster_hard(state)


def test_up_owns_a_loopback_cluster_and_keeps_simulated_data_apart(service):
    state = service["state"]
    assert state["owns_cluster"] and state["simulate"]
    assert state["ray_address"].startswith("127.0.0.1:")
    assert state["results_dir"] == str(service["base"] / "simulated")
    assert state["ib_host"] == "127.0.0.1" and state["ib_port"] > 0
    assert cluster_processes(head_of(state)), "the Ray head `up` started is not running"


def test_every_table_fills_through_the_queue(service):
    data = str(service["base"] / "simulated")
    deadline = time.monotonic() + FILL_TIMEOUT
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {name: read_table(name, data_dir=data).height for name in RESULT_TABLES}
        if all(counts.values()):
            break
        time.sleep(3)
    assert all(counts.values()), f"tables still empty after {FILL_TIMEOUT:g} s: {counts}"

    requests = read_table("ib_requests", data_dir=data)
    done_ids = set(requests.filter(requests["status"] == "SUCCESS")["request_id"].to_list())
    for name in ("option_snapshots", "futures_snapshots", "market_bars", "positions"):
        ids = set(read_table(name, data_dir=data)["request_id"].to_list())
        assert ids & done_ids, f"{name} rows do not come from SUCCESS requests of the queue"
    assert not (service["base"] / "market_bars").exists(), "simulated data leaked into base"


def test_status_json_shows_the_work(service):
    done = v6ray_cli("status", "--json", "--data-dir", str(service["base"]), check=True)
    payload = json.loads(done.stdout)
    depth = payload["queue"]["depth"]
    assert depth["SUCCESS"] > 0
    by_type = payload["queue"]["by_type"]
    for request_type in ("option_chain", "futures_snapshot", "market_bars", "position_update"):
        assert by_type[request_type]["SUCCESS"] > 0, request_type
    assert payload["gateway"]["state"] == "connected"
    assert payload["service"]["simulate"] is True
    # The simulator enforces IB's limits: the whole first round broke none of them.
    simulator = payload["simulator"]
    assert simulator["violations"] == {}, simulator
    assert simulator["connections"]["total"] == 1  # one connection for the whole system
    text = v6ray_cli("status", "--data-dir", str(service["base"]), check=True).stdout
    assert "SIMULATED" in text and "connected" in text
    assert "violations  none" in text


def test_submit_wait_succeeds_and_a_failed_request_exits_non_zero(service):
    base = str(service["base"])
    done = v6ray_cli(
        "submit", "market_bars", "QQQ", "--param", "duration=2 D", "--param", "bar_size=1 hour",
        "--priority", "1", "--wait", "--timeout", "90", "--data-dir", base, check=True,
    )  # fmt: skip
    assert "SUCCESS" in done.stdout and '"table": "market_bars"' in done.stdout
    failed = v6ray_cli(
        "submit", "futures_snapshot", "NOSUCHROOT", "--wait", "--timeout", "90", "--data-dir", base
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout
    assert failed.stderr.strip().splitlines()[-1].startswith("v6ray: error: request ")
    queued = v6ray_cli("submit", "position_update", "*", "--data-dir", base, check=True)
    assert len(queued.stdout.strip()) >= 32  # just the request id


def test_script_commands_report_a_summary(service):
    base = str(service["base"])
    history = v6ray_cli(
        "load-history", "SPY", "IWM", "--duration", "5 D", "--bar-size", "1 hour",
        "--timeout", "120", "--data-dir", base, check=True,
    )  # fmt: skip
    assert history.stdout.startswith("load-history: 2 requests"), history.stdout
    futures = v6ray_cli("load-futures", "ES", "--timeout", "120", "--data-dir", base, check=True)
    assert futures.stdout.startswith("load-futures: "), futures.stdout
    assert " 0 failures" in futures.stdout
    derive = v6ray_cli("derive-stats", "--timeout", "120", "--data-dir", base, check=True)
    assert derive.stdout.startswith("derive-stats: "), derive.stdout


def test_show_reads_the_simulated_tables(service):
    done = v6ray_cli("show", "market_bars", "--limit", "3", "--data-dir", str(service["base"]))
    assert done.returncode == 0, done.stderr
    assert "close" in done.stdout and "row(s) in market_bars" in done.stderr


def test_python_clients_connect_as_up_tells_them(service):
    """`up` prints how a notebook connects; that recipe must work as printed."""
    hint = next(
        line for line in service["up_output"].splitlines() if line.startswith("from Python:")
    )
    words = hint.split()[2:]  # after "from Python:"
    assignments = words[: words.index("python")]  # the KEY=VALUE prefix of the command
    assert any(a.startswith("RAY_ADDRESS=") for a in assignments), hint
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(var, None)  # only what the hint says
    env.update(a.split("=", 1) for a in assignments)
    code = "import v6ray; print(v6ray.connect().stats()['queue']['depth']['SUCCESS'])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 0


def test_plain_connect_finds_the_service_through_the_data_dir(service):
    """A notebook started in the data dir's parent (or with V6RAY_DATA_DIR) needs no recipe."""
    env = {**os.environ, "PYTHONPATH": REPO, "V6RAY_DATA_DIR": str(service["base"])}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(var, None)
    code = (
        "import v6ray; c = v6ray.connect(); "
        "rid = c.submit('position_update', '*', priority=1); "
        "print(c.wait(rid, timeout=90).status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=150
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "SUCCESS"


NOTEBOOK = """
import os, sys, time
import ray  # before the address is known: the single-machine switch was never set
import v6ray
address = sys.stdin.readline().strip()
if sys.argv[1] == "RAY_ADDRESS":
    os.environ["RAY_ADDRESS"] = address
started = time.monotonic()
client = v6ray.connect(address if sys.argv[1] == "argument" else "auto")
client.stats()
print(time.monotonic() - started)
"""


@pytest.mark.parametrize("how", ["argument", "RAY_ADDRESS"])
def test_a_process_that_imported_ray_first_connects_to_the_printed_address(
    service, tmp_path, how
):
    """A notebook opened before `up`, given the address `up` printed: it connects in
    seconds (Ray used to rewrite 127.0.0.1 to the routable IP and retry for ~14 min)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
                "V6RAY_DATA_DIR"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, how], input=service["state"]["ray_address"] + "\n",
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 30


def test_up_again_says_already_running(service):
    done = v6ray_cli("up", "--simulate", "--detach", "--data-dir", str(service["base"]), check=True)
    assert "already running" in done.stdout
    assert state_of(service["base"])["ray_address"] == service["state"]["ray_address"]


def test_zz_down_stops_actors_and_the_cluster(service):
    """Named zz_ so it runs last in this module (pytest keeps file order)."""
    base, state = service["base"], service["state"]
    done = v6ray_cli("down", "--data-dir", str(base), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("UnifiedScheduler: stop done", "IBGateway: shutdown done", "v6ray stopped"):
        assert line in done.stdout
    assert "warning" not in done.stderr
    assert not cluster_processes(head_of(state)), "Ray processes of the cluster survived down"
    assert not os.path.exists(state["head_temp_dir"])
    assert not (base / "_v6ray" / "service.json").exists()
    after = v6ray_cli("status", "--data-dir", str(base))
    assert after.returncode == 1 and "not running" in after.stderr
