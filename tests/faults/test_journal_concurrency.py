"""The journal table under concurrent processes: readers during compactions, a second writer,
a writer killed with the lock held. Real processes (``subprocess``), each bounded in time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from v6ray.model import new_request
from v6ray.queue.journal import Journal

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 120


def start_child(script: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )


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
    assert compactions >= 20
    assert sum(r["ok"] for r in results) >= 50  # the readers really overlapped compactions
    assert [r["errors"] for r in results] == [[], []]
