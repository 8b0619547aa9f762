"""Journal compaction whose cost follows the recent work, not the history.

The hot journal (``ib_requests``) holds two tiers of data files, told apart by name:

- recent files (``part-…``): one per group commit since the last compaction;
- day files (``base-YYYYMMDD-…``): the latest row of each request created that UTC day,
  written by compactions.

A request's rows all fall in one day (its ``created_at`` never changes), so a compaction
reads only the recent files and the day files of the days those rows belong to (usually
today's, yesterday's around midnight), rewrites those days, and leaves every other day
untouched. Day files entirely older than the retention window are read too, for what
they still hold (few rows once archived: requests still live or finished lately); the
finished requests among them whose last change is older than the window move to the
archive (``v6ray.queue.archive``) in the same pass. So one compaction costs the recent
rows plus today's plus what is due for the archive, whether the journal has seen ten
thousand requests or a million, and a restart reads the window's requests only.

Appends go on meanwhile (see ``v6ray.queue.journal``): the rewrite commit removes only the
files this compaction read, so rows appended since are kept, and their higher ``seq`` wins.
A table written before this layout holds only recent files: its first compaction reads all
of it once.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

from v6ray.queue.archive import remove_action
from v6ray.queue.journal_api import latest_requests
from v6ray.requests.model import Status
from v6ray.storage.local_append import remove_stale_files
from v6ray.storage.reader import retry_vacuum_race
from v6ray.storage.schemas import IB_REQUESTS_SCHEMA

if TYPE_CHECKING:
    from v6ray.queue.journal import Journal

DAY_PREFIX = "base-"
_DAY_FILE = re.compile(r"^base-(\d{8})-")
_DAY_FORMAT = "%Y%m%d"
_NO_DAY = "00000000"  # rows without created_at (none are written; old tables, by hand)
_FINAL = [status.value for status in Status if status.is_final]


def file_day(path: str) -> str | None:
    """The UTC day (YYYYMMDD) a day file holds; None for a recent file."""
    match = _DAY_FILE.match(os.path.basename(path))
    return match.group(1) if match else None


def _day_column(frame: pl.DataFrame) -> pl.Series:
    return frame["created_at"].dt.strftime(_DAY_FORMAT).fill_null(_NO_DAY)


def _day_ends_before(day: str, cutoff: datetime) -> bool:
    try:
        start = datetime.strptime(day, _DAY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return False
    return start + timedelta(days=1) <= cutoff


def archivable(frame: pl.DataFrame, cutoff: datetime) -> pl.Series:
    """Which latest rows are final and last changed before ``cutoff``: these never change
    again (a final request gets no more rows) and a restart needs none of them."""
    return frame["status"].is_in(_FINAL) & (frame["updated_at"] < cutoff).fill_null(False)


def _read_files(table_dir: str, names: list[str]) -> pl.DataFrame:
    """Rows of the named data files. Only a compaction deletes the journal's files, and one
    runs at a time, so no file vanishes under this read."""
    if not names:
        return pl.DataFrame(IB_REQUESTS_SCHEMA.empty_table())
    dataset = ds.dataset(
        [os.path.join(table_dir, n) for n in names], schema=IB_REQUESTS_SCHEMA, format="parquet"
    )
    return pl.DataFrame(dataset.to_table())


def compact_journal(journal: Journal, now: float) -> dict[str, Any]:
    """One compaction of ``journal`` at time ``now`` (epoch s); returns its report."""
    started = time.monotonic()
    # Its own snapshot (the append thread's table is not shared); listing the log while
    # appends link new entries can see a gap, which a second listing does not.
    table = retry_vacuum_race(lambda: DeltaTable(journal.path))
    actions = pa.table(table.get_add_actions(flatten=True))
    sizes = dict(zip(actions["path"].to_pylist(), actions["size_bytes"].to_pylist(), strict=True))
    recovered = journal.archive.recover(set(sizes))  # a move a crash cut short
    days: dict[str, list[str]] = defaultdict(list)
    recent = []
    for name in sizes:
        day = file_day(name)
        (days[day] if day else recent).append(name)
    cutoff = datetime.fromtimestamp(now, UTC) - journal.retention

    new_rows = _read_files(journal.path, recent)
    frames, replaced = [new_rows], list(recent)
    touched = set(_day_column(new_rows).unique().to_list())
    for day in sorted(touched & days.keys()):
        frames.append(_read_files(journal.path, days[day]))
        replaced += days[day]
    for day in sorted(d for d in days.keys() - touched if _day_ends_before(d, cutoff)):
        rows = _read_files(journal.path, days[day])
        if (
            len(days[day]) > 1
            or archivable(latest_requests(rows, keep_journal_columns=True), cutoff).any()
        ):
            frames.append(rows)
            replaced += days[day]
    frame = pl.concat(frames) if len(frames) > 1 else new_rows
    latest = latest_requests(frame, keep_journal_columns=True)
    moving = archivable(latest, cutoff)
    archived, kept = latest.filter(moving), latest.filter(~moving)

    if replaced:
        if archived.height:
            journal.archive.begin(archived.to_arrow().cast(IB_REQUESTS_SCHEMA), replaced)
        # Should this fail, the manifest stays: the next compaction's ``recover`` looks at
        # what the hot journal then holds and takes the archive's half back if need be.
        journal.commit_rewrite(kept, [remove_action(n, sizes[n]) for n in replaced])
        journal.archive.finish()
    archive_files_merged = journal.archive.merge_small_files() if archived.height else 0
    # Vacuum with zero retention, by hand: the files just replaced go now (a reader racing
    # this retries, see v6ray.storage.reader). deltalake's vacuum would also commit, and
    # its commit loses every race against a busy append thread.
    removed = _delete_files(journal.path, replaced)
    # Checkpoint and log cleanup commit nothing, and cleanup drops only entries before the
    # checkpoint, all older than the appends' next version: no race to lose.
    retry_vacuum_race(table.update_incremental)
    removed += remove_stale_files(journal.path, table, min_age_seconds=journal.stale_file_age)
    table.create_checkpoint()
    table.cleanup_metadata()
    files = len(table.file_uris())
    return {
        "rows_before": frame.height,
        "rows_after": kept.height,
        "archived": archived.height,
        "files_read": len(replaced),
        "files_removed": len(removed),
        "files": files,
        "version": table.version(),
        "recovered": recovered,
        "archive_files_merged": archive_files_merged,
        "seconds": round(time.monotonic() - started, 3),
    }


def day_files(kept: pl.DataFrame) -> list[tuple[str, pa.Table]]:
    """``kept`` split by creation day: (file name prefix, rows) per day file to write."""
    if not kept.height:
        return []
    keyed = kept.with_columns(_day=_day_column(kept))
    return [
        (f"{DAY_PREFIX}{day}", rows.drop("_day").to_arrow().cast(IB_REQUESTS_SCHEMA))
        for (day,), rows in sorted(keyed.partition_by("_day", as_dict=True).items())
    ]


def _delete_files(table_dir: str, names: list[str]) -> list[str]:
    deleted = []
    for name in names:
        try:
            os.remove(os.path.join(table_dir, name))
        except FileNotFoundError:
            continue
        deleted.append(name)
    return deleted
