"""The journal table under concurrent processes: readers during compactions, a second writer,
a writer killed with the lock held. Real processes (``subprocess``), each bounded in time."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from v6ray.errors import TableLocked
from v6ray.queue.journal import Journal, read_requests
from v6ray.requests.model import new_request
from v6ray.storage.reader import read_table

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 120


def start_child(script: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )


def wait_for_line(child: subprocess.Popen, expected: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.5)
        if ready and child.stdout.readline().strip() == expected:
            return
        assert child.poll() is None, child.stderr.read()[-3000:]
    raise AssertionError(f"the child never printed {expected!r}")


def child_result(child: subprocess.Popen) -> dict:
    out, err = child.communicate(timeout=CHILD_TIMEOUT)
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


READER = """
    import json, os, sys, time
    from v6ray import read_table

    data_dir, stop_file = sys.argv[1], sys.argv[2]
    ok, failed, errors = 0, 0, []
    while not os.path.exists(stop_file):
        try:
            read_table("ib_requests", data_dir=data_dir)
            ok += 1
        except Exception as exc:
            failed += 1
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5]}))
"""


def test_reads_during_compactions_all_succeed(data_dir, tmp_path):
    """A compaction removes data files and (through its checkpoint) log entries a reader may
    be loading; the reader retries (delta-rs reports the latter as DeltaError)."""
    journal = Journal(data_dir)
    requests = [new_request("futures_snapshot", f"S{i}") for i in range(200)]
    journal.append(requests)
    stop_file = str(tmp_path / "stop")
    readers = [start_child(READER, data_dir, stop_file) for _ in range(2)]
    compactions = 0
    try:
        began = time.monotonic()
        while time.monotonic() - began < 10:
            for k in range(5):
                journal.append([r.with_changes(attempts=compactions + 1)
                                for r in requests[k * 40:(k + 1) * 40]])
            journal.compact()
            compactions += 1
    finally:
        Path(stop_file).touch()
    results = [child_result(reader) for reader in readers]
    assert compactions >= 5
    assert sum(r["ok"] for r in results) >= 20  # the readers really overlapped compactions
    assert [r["errors"] for r in results] == [[], []]


HOLDER = """
    import sys, time
    from v6ray.requests.model import new_request
    from v6ray.queue.journal import Journal

    journal = Journal(sys.argv[1])
    journal.append([new_request("futures_snapshot", "HELD")])
    print("ready", flush=True)
    time.sleep(300)
"""


def test_a_second_writer_is_refused_until_the_holder_dies_even_by_sigkill(data_dir):
    holder = start_child(HOLDER, data_dir)
    try:
        wait_for_line(holder, "ready")
        started = time.monotonic()
        with pytest.raises(TableLocked) as refused:
            Journal(data_dir, lock_timeout=1.0)
        assert 1.0 <= time.monotonic() - started < 10  # waited its time, then gave up
        assert f"pid {holder.pid}" in str(refused.value)
        assert "only one queue may use a data dir" in str(refused.value)
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
        holder.wait(timeout=30)
        successor = Journal(data_dir, lock_timeout=10.0)  # waits for the exit if need be
        assert [r.symbol for r in successor.load_latest()] == ["HELD"]
        successor.append([new_request("futures_snapshot", "NEXT")])
        successor.close()
        assert sorted(r.symbol for r in read_requests(data_dir)) == ["HELD", "NEXT"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


JOURNAL_WRITER = """
    import json, sys
    from v6ray.requests.model import new_request
    from v6ray.queue.journal import Journal

    journal = Journal(sys.argv[1])
    print("ready", flush=True)
    acknowledged = []
    for i in range(int(sys.argv[2])):
        journal.append([new_request("futures_snapshot", f"S{i}")])
        acknowledged.append(f"S{i}")
    print(json.dumps({"acknowledged": acknowledged}))
"""


def test_opening_a_second_journal_beside_a_writer_loses_no_append(data_dir):
    """The issue's measurement: 1,500 appends while another journal opened 30 times lost
    acknowledged appends and broke every later read. The second open is refused now."""
    writer = start_child(JOURNAL_WRITER, data_dir, "1000")
    wait_for_line(writer, "ready")
    refused = 0
    for _ in range(30):
        try:
            Journal(data_dir, lock_timeout=0.0).close()
        except TableLocked:
            refused += 1
        time.sleep(0.05)
    acknowledged = child_result(writer)["acknowledged"]
    assert refused >= 20  # the writer was still appending: the opens were refused
    assert sorted(read_table("ib_requests", data_dir=data_dir)["symbol"]) == sorted(acknowledged)
    restarted = Journal(data_dir, lock_timeout=10.0)
    assert len(restarted.load_latest()) == 1000
    restarted.close()


FOREIGN_APPENDER = """
    import json, sys, time
    from v6ray.requests.model import new_request
    from v6ray.queue.journal import requests_to_arrow
    from v6ray.storage.local_append import LocalAppender
    from v6ray.storage.schemas import table_path

    appender = LocalAppender(table_path(sys.argv[1], "ib_requests"))
    print("ready", flush=True)
    acknowledged = []
    for i in range(int(sys.argv[2])):
        rows = requests_to_arrow([new_request("futures_snapshot", f"F{i}")], i + 1)
        appender.append(rows)
        acknowledged.append(f"F{i}")
    print(json.dumps({"acknowledged": acknowledged}))
"""


def test_the_open_time_sweep_spares_a_young_uncommitted_file(data_dir):
    """Even a writer that ignores the lock keeps its appends: the sweep at open deletes
    only files no commit names that are older than a writer could still be committing."""
    Journal(data_dir).close()
    writer = start_child(FOREIGN_APPENDER, data_dir, "1000")
    wait_for_line(writer, "ready")
    for _ in range(30):
        Journal(data_dir, lock_timeout=10.0).close()
        time.sleep(0.05)
    acknowledged = child_result(writer)["acknowledged"]
    assert sorted(read_table("ib_requests", data_dir=data_dir)["symbol"]) == sorted(acknowledged)
    assert len(read_requests(data_dir)) == 1000
