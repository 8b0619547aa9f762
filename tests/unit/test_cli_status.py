"""Status rendering and the service state file (pure)."""

from __future__ import annotations

import json
import os

from v6ray.cli import status
from v6ray.service.cluster import (
    OwnedHead,
    cluster_processes,
    is_loopback,
    split_address,
    stop_head,
)
from v6ray.service.lifecycle import ServiceState, results_dir
from v6ray.service.settings import Settings

STATS = {
    "queue": {
        "depth": {"PENDING": 3, "PROCESSING": 2, "SUCCESS": 40, "FAILED": 1, "CANCELLED": 0},
        "by_type": {
            "market_bars": {"PENDING": 3, "SUCCESS": 10},
            "option_chain": {"PENDING": 0, "SUCCESS": 0},
        },
        "by_priority": {"2": {"SUCCESS": 40}},
        "in_flight": 2,
        "oldest_pending_age_s": 4.25,
        "recent_failures": [
            {
                "request_id": "r1",
                "request_type": "market_bars",
                "symbol": "ZZZ",
                "error_message": "IB error 200: no security definition",
            }
        ],
        "submitted_total": 46,
        "coalesced_total": 5,
    },
    "gateway": {
        "state": "connected",
        "circuit": "closed",
        "in_flight": 2,
        "lines_in_use": 7,
        "line_budget": 95,
        "pacing": {"messages_per_second": 40, "hist_open": 1},
        "ib_errors": {"200": 1},
    },
}


def test_one_line_status_has_the_live_numbers():
    line = status.one_line(STATS)
    assert "\n" not in line
    for text in (
        "3 pending",
        "in flight 2",
        "IB connected",
        "circuit closed",
        "lines 7/95",
        "ok 40",
        "failed 1",
    ):
        assert text in line


def test_text_status_shows_every_section():
    text = status.to_text(STATS, {"simulate": True, "ray_address": "127.0.0.1:1"})
    for fragment in (
        "SIMULATED",
        "PENDING 3",
        "market_bars",
        "connected",
        "7 in use of 95",
        "hist_open=1",
        "200=1",
        "no security definition",
        "oldest pending 4.2",
    ):
        assert fragment in text, fragment
    assert "option_chain" not in text  # all-zero rows are left out


def test_text_status_survives_a_gateway_that_is_not_running():
    text = status.to_text({"queue": {}, "gateway": {"state": "not running"}})
    assert "not running" in text and "recent failures: none" in text
    assert "lines" in status.one_line({})


RESTARTED = {
    "claim_loop": {"state": "running", "restarts": 3,
                   "last_error": "RuntimeError: queue actor restarting", "last_error_at": 1.0},
    "connection_watchdog": {"state": "running", "restarts": 0, "last_error": None,
                            "last_error_at": None},
}


def test_status_says_which_gateway_loop_restarted_how_often_and_why():
    stats = {**STATS, "gateway": {**STATS["gateway"], "tasks": RESTARTED}}
    text = status.to_text(stats)
    assert "claim loop restarted 3×, last error RuntimeError: queue actor restarting" in text
    assert "connection watchdog running" in text
    assert "restarted claim loop 3×" in status.one_line(stats)
    payload = json.loads(status.to_json(stats))
    assert payload["gateway"]["tasks"]["claim_loop"]["restarts"] == 3
    healthy = {**STATS, "gateway": {**STATS["gateway"], "tasks": {
        name: {**task, "restarts": 0, "last_error": None} for name, task in RESTARTED.items()}}}
    assert "claim loop running · connection watchdog running" in status.to_text(healthy)
    assert "restarted" not in status.to_text(healthy) + status.one_line(healthy)
    waiting = {"gateway": {"tasks": {"claim_loop": {**RESTARTED["claim_loop"],
                                                    "state": "restarting"}}}}
    assert "claim loop restarted 3×, now restarting" in status.to_text(waiting)
    assert "tasks" not in status.to_text({"gateway": {"tasks": "garbled"}})


def test_json_status_round_trips():
    payload = json.loads(status.to_json(STATS, {"ray_address": "127.0.0.1:1"}))
    assert payload["queue"]["depth"]["SUCCESS"] == 40
    assert payload["gateway"]["lines_in_use"] == 7
    assert payload["service"]["ray_address"] == "127.0.0.1:1"


def test_state_file_round_trip(tmp_path):
    state = ServiceState(
        base_data_dir=str(tmp_path),
        results_dir=str(tmp_path / "simulated"),
        ray_address="127.0.0.1:5",
        owns_cluster=True,
        simulate=True,
        time_scale=0.1,
        ib_host="127.0.0.1",
        ib_port=4002,
        client_id=17,
        head_pid=123,
        head_temp_dir="/tmp/v6ray-x",
    )
    state.save()
    assert os.path.exists(ServiceState.path(str(tmp_path)))
    assert ServiceState.load(str(tmp_path)) == state
    assert state.head().pid == 123
    state.remove()
    assert ServiceState.load(str(tmp_path)) is None


def test_corrupt_state_file_reads_as_none(tmp_path):
    path = ServiceState.path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as out:
        out.write("{not json")
    assert ServiceState.load(str(tmp_path)) is None


def test_simulated_data_is_kept_apart(tmp_path):
    settings = Settings(data_dir=str(tmp_path))
    assert results_dir(settings, simulate=False) == str(tmp_path)
    assert results_dir(settings, simulate=True) == str(tmp_path / "simulated")


def test_addresses():
    assert split_address("127.0.0.1:6379") == ("127.0.0.1", 6379)
    assert is_loopback("localhost:1") and not is_loopback("10.0.0.5:6379")


def test_a_recycled_head_pid_is_never_signalled():
    """After a reboot the recorded head pid may belong to anyone: here, this very test."""
    stranger = OwnedHead(
        pid=os.getpid(),
        gcs_address="127.0.0.1:1",
        dashboard_url="",
        temp_dir="/tmp/v6ray-not-a-real-dir",
        log_path="",
        auth_mode=None,
    )
    assert cluster_processes(stranger) == []  # our session is not taken for the cluster's
    assert stop_head(stranger, timeout=0.1) == []  # and we are still alive to assert it
    state = ServiceState(
        base_data_dir="/nowhere",
        results_dir="/nowhere",
        ray_address="127.0.0.1:1",
        owns_cluster=True,
        simulate=False,
        time_scale=1.0,
        ib_host="h",
        ib_port=1,
        client_id=1,
        head_pid=os.getpid(),
        head_temp_dir="/tmp/v6ray-not-a-real-dir",
    )
    assert not state.cluster_alive()


def test_text_status_shows_the_simulators_counters():
    stats = {
        "queue": {},
        "gateway": {},
        "simulator": {
            "connections": {"active": 1, "total": 2},
            "messages": {"total": 153, "peak_per_window": 44, "window_seconds": 1.0},
            "market_data_lines": {"in_use": 3, "peak": 46, "capacity": 100},
            "violations": {"101": 2},
        },
    }
    text = status.to_text(stats, {"simulate": True})
    assert "simulator (SIMULATED IB Gateway)" in text
    assert "connections 1 active · 2 total · messages 153 · peak 44 in any 1 s" in text
    assert "peak 46 of 100" in text
    assert "violations  101=2" in text
    quiet = status.to_text({**stats, "simulator": {**stats["simulator"], "violations": {}}})
    assert "violations  none" in quiet
    broken = status.to_text({**stats, "simulator": {"error": "ActorDiedError: gone"}})
    assert "stats error ActorDiedError: gone" in broken
