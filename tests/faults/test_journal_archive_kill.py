"""A queue process killed (SIGKILL) while it moves old requests to the archive loses none and
duplicates none: readers see each request once at every point, the next writer's restart
finds every live request, and its next compaction finishes the move exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.faults.test_journal_concurrency import wait_for_line
from v6ray.queue.archive import MANIFEST
from v6ray.queue.journal import Journal
from v6ray.requests.model import Status, new_request
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import requests_archive_path, table_path

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# Compacts the journal at NOW; dies by SIGKILL at the named point of the move ("none":
# at a moment the parent picks).
COMPACTOR = """
    import os, signal, sys
    from v6ray.queue import archive, compaction
    from v6ray.queue.journal import Journal
    from v6ray.storage.local_append import LocalAppender

    data_dir, point, now = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def then_die(fn):
        def wrapped(*args, **kwargs):
            fn(*args, **kwargs)
            die()
        return wrapped

    write_file = LocalAppender.write_file
    def write_then_die_in_archive(self, data, *, name_prefix="part-00000"):
        added = write_file(self, data, name_prefix=name_prefix)
        if name_prefix == "archive":
            die()
        return added

    if point == "archive_file_written":
        LocalAppender.write_file = write_then_die_in_archive
    elif point == "manifest_written":
        archive._write_atomically = then_die(archive._write_atomically)
    elif point == "archive_committed":
        Journal.commit_rewrite = die
    elif point == "journal_committed":
        archive.RequestArchive.finish = die
    elif point == "vacuuming":
        compaction._delete_files = die
    journal = Journal(data_dir)
    journal.load_for_restore(final_limit=0)
    print("ready", flush=True)
    journal.compact(now=now)
    print("done", flush=True)
"""


def start_compactor(data_dir: str, point: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(COMPACTOR), data_dir, point, str(NOW.timestamp())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def build_history(data_dir: str, finished: int) -> tuple[set[str], set[str]]:
    """Old finished requests (to be archived), old live ones and recent ones; returns
    (ids to be archived, ids of live requests)."""
    journal = Journal(data_dir)
    old = NOW - timedelta(days=45)
    gone = [
        new_request(
            "futures_snapshot",
            f"G{i % 500}",
            now=old + timedelta(seconds=i),
            parameters={"contract_month": f"2027{i // 500 % 12 + 1:02d}"},
        )
        for i in range(finished)
    ]
    live = [new_request("futures_snapshot", f"L{i}", now=old) for i in range(5)]
    recent = [
        new_request(
            "market_bars",
            "SPY",
            now=NOW - timedelta(hours=i),
            parameters={"duration": f"{i + 1} D"},
        )
        for i in range(20)
    ]
    journal.append([*gone, *live, *recent])
    journal.append(
        [
            r.with_changes(
                status=Status.SUCCESS,
                result_data={"rows": 1},
                updated_at=r.created_at + timedelta(seconds=2),
            )
            for r in [*gone, *recent[:10]]
        ]
    )
    journal.close()
    return {r.request_id for r in gone}, {r.request_id for r in [*live, *recent[10:]]}


def ids_in(path: str) -> Counter[str]:
    if not DeltaTable.is_deltatable(path):
        return Counter()
    table = DeltaTable(path).to_pyarrow_table(columns=["request_id"])
    return Counter(table["request_id"].to_pylist())


def check_after_kill(data_dir: str, expected, gone: set[str], live: set[str]) -> None:
    # Readers: every request exactly once, in its latest state, at whatever point it died.
    frame = read_table("ib_requests", data_dir=data_dir).sort("request_id")
    assert frame["request_id"].n_unique() == frame.height == expected.height
    assert frame.equals(expected)
    # A restarted queue finds every live request (and reads the hot journal only).
    journal = Journal(data_dir, lock_timeout=10)
    restored, _, _ = journal.load_for_restore(final_limit=0)
    assert {r.request_id for r in restored} == live
    # Its next compaction finishes the move: each archived once, none left behind.
    journal.compact(now=NOW.timestamp())
    journal.close()
    archived = ids_in(requests_archive_path(data_dir))
    assert set(archived) == gone and max(archived.values()) == 1
    assert not set(ids_in(table_path(data_dir, "ib_requests"))) & gone
    assert not os.path.exists(os.path.join(requests_archive_path(data_dir), MANIFEST))
    assert read_table("ib_requests", data_dir=data_dir).sort("request_id").equals(expected)


@pytest.mark.parametrize(
    "point",
    [
        "archive_file_written",
        "manifest_written",
        "archive_committed",
        "journal_committed",
        "vacuuming",
    ],
)
def test_killed_at_each_step_of_the_move(data_dir, point):
    gone, live = build_history(data_dir, finished=300)
    expected = read_table("ib_requests", data_dir=data_dir).sort("request_id")
    child = start_compactor(data_dir, point)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    check_after_kill(data_dir, expected, gone, live)


def test_killed_at_random_moments_of_a_large_move(tmp_path):
    rng = random.Random(12)
    for attempt in range(3):
        data_dir = str(tmp_path / f"run{attempt}")
        gone, live = build_history(data_dir, finished=8_000)
        expected = read_table("ib_requests", data_dir=data_dir).sort("request_id")
        child = start_compactor(data_dir, "none")
        wait_for_line(child, "ready")
        time.sleep(rng.uniform(0.0, 1.5))
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=120)
        check_after_kill(data_dir, expected, gone, live)
