"""One 390-row ``market_bars`` MERGE into a table of 10k rows beside one of 5M rows.

    python bench/growth_merge.py [--small 10000] [--large 5000000] [--rounds 5]

Both tables have the shape a running service leaves (``shape_table``):

- history: every past day one file per day partition, 50 symbols x 390 one-minute bars a
  day, as the nightly maintenance leaves it (compacted per partition, checkpointed);
- today: a session of live flushes, one small file per minute holding that minute's bar of
  8 streamed symbols (390 files, 3,120 rows), not compacted yet.

Only the history differs: 10k rows is under a day of it, 5M rows about 256 days. The 5M
rows are written in a few large writes (one file per partition each), which is exactly
the per-partition layout compaction produces, so building takes seconds, not a day.

The timed MERGE is v6ray's writer (``merge_rows``, opening the table included): 390 new
bars of today for a symbol not streamed (inserts), then the same 390 bars again with a
new close (updates: the file the first MERGE wrote is rewritten). The two tables take
turns, round by round; the median of ``rounds`` of each is printed per table with the
files the inserting MERGE read, and the ratio large/small (goal <= 2). Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

REPO = str(Path(__file__).resolve().parents[1])
sys.path[:0] = [REPO, str(Path(__file__).resolve().parent)]  # a checkout: its v6ray, bench/

from growth_measure import Measurement  # noqa: E402

from v6ray.storage.layout import with_partition_columns  # noqa: E402
from v6ray.storage.schemas import conform, table_path, table_spec  # noqa: E402
from v6ray.storage.writer import merge_rows  # noqa: E402

TABLE = "market_bars"
SPEC = table_spec(TABLE)
HISTORY_SYMBOLS = 50
STREAMED_SYMBOLS = 8  # symbols whose 1-minute bars are flushed live all day
BARS_PER_DAY = 390  # one regular session of 1-minute bars
DAYS_PER_WRITE = 32  # history is written in a few large writes
TODAY = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)  # session open, 09:30 New York
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class MergeTimes:
    rows: int
    files: int
    insert_seconds: float
    update_seconds: float
    files_scanned: int


def symbol(i: int) -> str:
    return f"S{i:03d}"


def bars(
    symbols: list[str], day_starts: list[datetime], minutes: range, close: float = 1.0
) -> pa.Table:
    """1-minute bars of ``symbols`` on each day of ``day_starts`` at ``minutes`` past open,
    in the table's stored schema (partition column included)."""
    stamps = np.array(
        [int((d + m * MINUTE).timestamp() * 1e6) for d in day_starts for m in minutes],
        dtype=np.int64,
    )
    n = len(symbols) * len(stamps)
    frame = {
        "request_id": pa.array(["bench"] * n, pa.string()),
        "symbol": pa.array(np.repeat(np.array(symbols, dtype=object), len(stamps))),
        "bar_size": pa.array(["1 min"] * n),
        "what_to_show": pa.array(["TRADES"] * n),
        "timestamp": pa.array(np.tile(stamps, len(symbols)), pa.timestamp("us", tz="UTC")),
        "open": pa.array(np.full(n, 1.0)),
        "high": pa.array(np.full(n, 2.0)),
        "low": pa.array(np.full(n, 0.5)),
        "close": pa.array(np.full(n, close)),
        "volume": pa.array(np.full(n, 10.0)),
        "use_rth": pa.array(np.full(n, True)),
        "sec_type": pa.array(["STK"] * n),
        "exchange": pa.array(["SMART"] * n),
        "contract_month": pa.array([""] * n),
    }
    return with_partition_columns(conform(pa.table(frame), SPEC.schema), SPEC.partitions)


def shape_table(data_dir: str, rows: int) -> int:
    """Build ``market_bars`` of ``rows`` rows under ``data_dir`` (see the module docstring);
    returns its file count."""
    path = table_path(data_dir, TABLE)
    DeltaTable.create(path, SPEC.stored_schema, partition_by=SPEC.partition_by)
    streamed = [symbol(i) for i in range(STREAMED_SYMBOLS)]
    history = rows - STREAMED_SYMBOLS * BARS_PER_DAY
    per_day = HISTORY_SYMBOLS * BARS_PER_DAY
    days = [TODAY - timedelta(days=d) for d in range(1, -(-history // per_day) + 1)]
    for first in range(0, len(days), DAYS_PER_WRITE):
        chunk = bars(
            [symbol(i) for i in range(HISTORY_SYMBOLS)],
            days[first : first + DAYS_PER_WRITE],
            range(BARS_PER_DAY),
        )
        written = sum(HISTORY_SYMBOLS * BARS_PER_DAY for _ in days[:first])
        chunk = chunk.slice(0, max(0, min(chunk.num_rows, history - written)))
        write_deltalake(path, chunk, mode="append")
    DeltaTable(path).create_checkpoint()  # as the nightly maintenance leaves it
    for minute in range(BARS_PER_DAY):  # today's live flushes, one small file each
        write_deltalake(path, bars(streamed, [TODAY], range(minute, minute + 1)), mode="append")
    delta = DeltaTable(path)
    assert delta.count() == rows, (delta.count(), rows)
    return len(delta.file_uris())


def timed_merge(data_dir: str, rows: pa.Table) -> float:
    started = time.perf_counter()
    merge_rows(data_dir, TABLE, rows)
    return time.perf_counter() - started


def files_scanned(data_dir: str) -> int:
    """Target files the table's last MERGE read (delta-rs's operation metrics)."""
    history = DeltaTable(table_path(data_dir, TABLE)).history(1)[0]
    return int(history["operationMetrics"]["num_target_files_scanned"])


def measure_merge(
    small: int = 10_000, large: int = 5_000_000, rounds: int = 5
) -> dict[str, object]:
    """Both tables built, then timed in turns (each round: a MERGE into the small table,
    then the same into the large one), so a busy moment of the machine falls on both.
    Returns the figures and the ratios (large / small) of the inserting and of the
    updating MERGE."""
    dirs = {size: tempfile.mkdtemp(prefix=f"v6ray-growth-merge-{size}-") for size in (small, large)}
    try:
        files = {size: shape_table(d, size) for size, d in dirs.items()}
        inserts: dict[int, list[float]] = {size: [] for size in dirs}
        updates: dict[int, list[float]] = {size: [] for size in dirs}
        scanned: dict[int, int] = {}
        for r in range(rounds + 1):  # round 0 warms caches and is not counted
            name = symbol(HISTORY_SYMBOLS - 1 - r)  # a symbol not streamed today
            fresh = bars([name], [TODAY], range(BARS_PER_DAY))
            again = bars([name], [TODAY], range(BARS_PER_DAY), close=2.0)
            for size, d in dirs.items():
                inserted = timed_merge(d, fresh)
                scanned[size] = files_scanned(d)
                updated = timed_merge(d, again)
                if r:
                    inserts[size].append(inserted)
                    updates[size].append(updated)
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    few, many = (
        MergeTimes(
            size,
            files[size],
            statistics.median(inserts[size]),
            statistics.median(updates[size]),
            scanned[size],
        )
        for size in (small, large)
    )
    return {
        "small": few,
        "large": many,
        "insert_ratio": many.insert_seconds / few.insert_seconds,
        "update_ratio": many.update_seconds / few.update_seconds,
    }


def report(result: dict[str, object]) -> str:
    lines = ["390-row market_bars MERGE (v6ray writer, median):"]
    for key in ("small", "large"):
        t: MergeTimes = result[key]  # type: ignore[assignment]
        lines.append(
            f"  {t.rows:>9,} rows, {t.files:>4} files: new bars {t.insert_seconds * 1e3:7.1f} ms,"
            f" same bars again {t.update_seconds * 1e3:7.1f} ms"
            f" (new bars read {t.files_scanned} files)"
        )
    lines.append(
        f"  ratio large/small: new bars {result['insert_ratio']:.2f},"
        f" same bars again {result['update_ratio']:.2f} (goal <= 2)"
    )
    return "\n".join(lines)


def run(quick: bool) -> list[Measurement]:
    """``bench/growth.py``'s "merge" section: the same figures as ``main``."""
    result = measure_merge(large=500_000 if quick else 5_000_000, rounds=2 if quick else 5)
    few: MergeTimes = result["small"]  # type: ignore[assignment]
    many: MergeTimes = result["large"]  # type: ignore[assignment]
    note = (
        f"{few.rows:,} rows in {few.files} files vs {many.rows:,} rows in {many.files} files;"
        f" new bars read {few.files_scanned} vs {many.files_scanned} files"
    )
    return [
        Measurement("market_bars MERGE, 390 new bars", few.insert_seconds * 1e3,
                    many.insert_seconds * 1e3, "ms", goal_ratio=2, note=note),
        Measurement("market_bars MERGE, the same 390 bars again", few.update_seconds * 1e3,
                    many.update_seconds * 1e3, "ms", goal_ratio=2),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(report(measure_merge(args.small, args.large, args.rounds)), flush=True)
    os._exit(0)  # deltalake's runtime can abort at interpreter exit; all is printed


if __name__ == "__main__":
    raise SystemExit(main())
