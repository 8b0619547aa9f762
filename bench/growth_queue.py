"""``bench/growth.py`` section: the queue over 10k vs 1M finished requests of history.

History: N finished requests spread evenly over the past 365 days, written straight into
``ib_requests`` as one data file holding each request's latest row, the way a year of
service leaves the journal once compacted by the layout before the archive (building
them through the queue would take hours: the rows, schema and ``seq`` order are the
journal's own). The first compaction of the queue then moves what is older than the
retention window (30 days) to ``ib_requests_archive``: shown once, as "upgrade".

Live work, the same in both cases, appended through ``Journal.append`` as the queue does:
LIVE pending requests, plus a burst of submit / claim / complete states in
``BURST_COMMITS`` group commits (the default compaction period, ``compact_every_commits``).

- restart: ``RequestQueue(data_dir)`` in a fresh process, seconds until it is built (it
  answers then; wall and CPU time), and the process's resident memory then (VmRSS; the
  interpreter and its libraries, ~200 MB, are in both); median of 5 alternating rounds;
- compaction: a burst appended, then ``Journal.compact()`` timed; alternating cases.

Note the window itself differs: a year of 1M requests leaves ~82k finished in the last
30 days, a year of 10k ~820; both are in the hot journal, as the retention asks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from growth_measure import Measurement, side_by_side

from v6ray.queue.journal import Journal
from v6ray.requests.model import Status, new_request
from v6ray.storage.local_append import LocalAppender
from v6ray.storage.schemas import IB_REQUESTS_SCHEMA, table_path

SMALL, LARGE = 10_000, 1_000_000
QUICK_SMALL, QUICK_LARGE = 2_000, 100_000
LIVE = 1_000
BURST_COMMITS = 500
BURST_REQUESTS_PER_COMMIT = 2  # each commit: 2 submits, 2 claims, 2 completions
YEAR = timedelta(days=365)
SYMBOLS = ["ES", "NQ", "RTY", "YM", "CL", "GC", "ZN", "6E"]

RESTART = r"""
import json, sys, time
from v6ray.queue.actor import RequestQueue
from v6ray.queue.config import QueueConfig

def rss(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) / 1024

before = rss("VmRSS:")
started, cpu = time.perf_counter(), time.process_time()
queue = RequestQueue(sys.argv[1], QueueConfig())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_mb": rss("VmRSS:"),
                  "peak_mb": rss("VmHWM:"), "imports_mb": before,
                  "live": len(queue.core.live_requests())}))
"""


def _micros(stamp: datetime) -> int:
    return int(stamp.timestamp() * 1_000_000)


def history_rows(n: int, now: datetime, seed: int) -> pa.Table:
    """``n`` finished requests' latest rows, created evenly over the year before ``now``."""
    rng = np.random.default_rng(seed)
    created = np.sort(_micros(now - YEAR) + (rng.random(n) * YEAR.total_seconds() * 1e6))
    created = created.astype(np.int64)
    updated = created + rng.integers(2_000_000, 30_000_000, n)
    failed = rng.random(n) < 0.02
    raw = rng.bytes(16 * n)
    ids = [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]
    symbols = np.array(SYMBOLS)[rng.integers(0, len(SYMBOLS), n)]
    stamp = pa.timestamp("us", tz="UTC")
    columns = {
        "request_id": pa.array(ids, pa.string()),
        "request_type": pa.array(["futures_snapshot"] * n, pa.string()),
        "symbol": pa.array(symbols.tolist(), pa.string()),
        "priority": pa.array(np.full(n, 2, np.int32)),
        "status": pa.array(np.where(failed, "FAILED", "SUCCESS").tolist(), pa.string()),
        "parameters": pa.array(['{"contract_month":"202612","exchange":"CME"}'] * n),
        "result_table": pa.array(["futures_snapshots"] * n, pa.string()),
        "created_at": pa.array(created).cast(stamp),
        "updated_at": pa.array(updated).cast(stamp),
        "attempts": pa.array(np.where(failed, 5, 1).astype(np.int32)),
        "error_message": pa.array(
            np.where(failed, "error 200: no security definition", None).tolist(), pa.string()
        ),
        "result_data": pa.array(np.where(failed, None, '{"rows":1}').tolist(), pa.string()),
        "seq": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "not_before": pa.nulls(n, stamp),
        "lease_owner": pa.array(["IBGateway-1"] * n, pa.string()),
        "lease_expires_at": pa.nulls(n, stamp),
    }
    return pa.Table.from_pydict(columns, schema=IB_REQUESTS_SCHEMA)


def build(data_dir: str, n: int, seed: int) -> float:
    """History of ``n`` plus the live work; returns the upgrade compaction's seconds."""
    now = datetime.now(UTC)
    Journal(data_dir).close()  # creates the table
    LocalAppender(table_path(data_dir, "ib_requests")).append(history_rows(n, now, seed))
    journal = Journal(data_dir)
    journal.load_for_restore(final_limit=0)  # positions seq, as a starting queue does
    journal.append(
        [
            new_request(
                "futures_snapshot",
                f"L{i % 50}",
                now=now,
                parameters={"contract_month": f"2027{i // 50 % 12 + 1:02d}"},
            )
            for i in range(LIVE)
        ]
    )
    burst(journal)
    started = time.perf_counter()
    journal.compact()
    seconds = time.perf_counter() - started
    journal.close()
    return seconds


def burst(journal: Journal) -> None:
    """Live traffic between two compactions: submit, claim, complete, one commit at a time."""
    claimed, done = [], []
    for _ in range(BURST_COMMITS):
        submitted = [
            new_request("market_bars", "SPY", parameters={"duration": "1 D"})
            for _ in range(BURST_REQUESTS_PER_COMMIT)
        ]
        states = [
            *submitted,
            *[r.with_changes(status=Status.PROCESSING, attempts=1) for r in claimed],
            *[r.with_changes(status=Status.SUCCESS, result_data={"rows": 390}) for r in done],
        ]
        journal.append(states)
        done, claimed = claimed, submitted


def restart(data_dir: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RESTART, data_dir],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Measurement]:
    sizes = {"small": QUICK_SMALL if quick else SMALL, "large": QUICK_LARGE if quick else LARGE}
    root = tempfile.mkdtemp(prefix="v6ray-growth-")
    dirs = {case: os.path.join(root, case) for case in sizes}
    try:
        upgrade = {case: build(dirs[case], n, seed=i) for i, (case, n) in enumerate(sizes.items())}
        restarts = side_by_side(lambda case: restart(dirs[case]), rounds=5)
        journals = {case: Journal(path) for case, path in dirs.items()}
        for journal in journals.values():
            journal.load_for_restore(final_limit=0)

        def compact(case: str) -> dict[str, float]:
            burst(journals[case])
            report = journals[case].compact()
            return {
                "seconds": report["seconds"],
                "rows": report["rows_before"],
                "files": report["files_read"],
            }

        compactions = side_by_side(compact, rounds=3)
        hot = {case: journals[case].load_for_restore(final_limit=0)[2].total() for case in sizes}
        for journal in journals.values():
            journal.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    small, large = f"{sizes['small']:,}", f"{sizes['large']:,}"
    history = f"{small} vs {large} finished requests over a year"
    return [
        Measurement(
            f"queue restart time ({history})",
            restarts["small"]["seconds"],
            restarts["large"]["seconds"],
            "s",
            2.0,
            note=f"requests in the hot journal after the run: {hot['small']:,} vs "
            f"{hot['large']:,} ({LIVE:,} live in both)",
        ),
        Measurement(
            "queue restart CPU time (all threads; steadier than wall time on a busy machine)",
            restarts["small"]["cpu_seconds"],
            restarts["large"]["cpu_seconds"],
            "s",
            2.0,
        ),
        Measurement(
            "queue restart RSS",
            restarts["small"]["rss_mb"],
            restarts["large"]["rss_mb"],
            "MB",
            2.0,
            note=f"of which imports: {restarts['small']['imports_mb']:.0f} vs "
            f"{restarts['large']['imports_mb']:.0f} MB; peak "
            f"{restarts['small']['peak_mb']:.0f} vs "
            f"{restarts['large']['peak_mb']:.0f} MB",
        ),
        Measurement(
            f"journal compaction time after a burst of {BURST_COMMITS} commits",
            compactions["small"]["seconds"],
            compactions["large"]["seconds"],
            "s",
            2.0,
            note=f"rows read {compactions['small']['rows']:,.0f} vs "
            f"{compactions['large']['rows']:,.0f}, files read "
            f"{compactions['small']['files']:.0f} vs "
            f"{compactions['large']['files']:.0f}",
        ),
        Measurement(
            "upgrade: first compaction of a pre-archive journal (once)",
            upgrade["small"],
            upgrade["large"],
            "s",
            note="reads the whole old journal and moves the history to the archive",
        ),
    ]
