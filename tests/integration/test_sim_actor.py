"""The simulator as a detached Ray actor, and as the ``python -m v6ray.sim`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ib_async import IB, Stock

from v6ray.sim import SimConfig
from v6ray.sim.actor import get_or_create_simulator

REPO = Path(__file__).resolve().parents[2]


def test_simulator_actor_serves_ib_async_and_exposes_faults(ray_namespace):
    import ray

    handle = get_or_create_simulator(SimConfig(seed=3, time_scale=0.1), namespace=ray_namespace)
    again = get_or_create_simulator(SimConfig(seed=99), namespace=ray_namespace)
    port = ray.get(handle.port.remote())
    assert ray.get(again.port.remote()) == port  # get_if_exists: one simulator per name
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=1, readonly=True, timeout=10)
    try:
        [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
        assert spy.conId == 756733
        ray.get(handle.inject_error.remote("mktdata", 354, "Requested market data is not "
                                           "subscribed.", 1, "SPY"))
        [ticker] = ib.reqTickers(spy)
        assert ticker.last != ticker.last  # NaN: answered with the injected 354
        assert ray.get(handle.drop_connections.remote()) == 1
    finally:
        ib.disconnect()
    stats = ray.get(handle.stats.remote())
    assert stats["errors_sent"]["354"] == 1 and stats["connections"]["total"] == 1
    ray.get(handle.stop.remote())


def test_cli_runs_in_the_foreground_keeps_a_stats_file_and_exits_0_on_sigterm(tmp_path):
    stats_file = tmp_path / "sim-stats.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6ray.sim", "--port", "0", "--seed", "4", "--time-scale", "0.5",
         "--stats-file", str(stats_file), "--market-data-lines", "7"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        banner = proc.stdout.readline()
        port = int(banner.split(":")[1].split()[0])
        ib = IB()
        ib.connect("127.0.0.1", port, clientId=1, readonly=True, timeout=10)
        ib.disconnect()
        deadline = time.monotonic() + 5
        stats: dict = {}
        while time.monotonic() < deadline:
            if stats_file.exists():
                stats = json.loads(stats_file.read_text())
                if stats["connections"]["total"] == 1:
                    break
            time.sleep(0.1)
        assert stats["connections"]["total"] == 1
        assert stats["market_data_lines"]["capacity"] == 7
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("argv", [["--time-scale", "0"], ["--market-data-lines", "0"]])
def test_cli_rejects_bad_settings_with_a_one_line_reason(argv, capsys):
    from v6ray.sim.cli import main

    assert main(["--port", "0", *argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1
