"""An in-memory ``RequestJournal``: the queue's journal with no disk, for tests.

Shipped in the package as dramatiq ships its stub broker: ``RequestQueue(data_dir,
journal_factory=MemoryJournals())`` runs the queue's whole logic (group commit, restore,
eviction to the journal, compaction, retention) at memory speed. It keeps the rules of
``v6ray.queue.journal_api`` (``seq`` order, latest row wins, the archive, one writer);
``tests/unit/test_journal_contract.py`` holds it to the Delta journal's behaviour.

``MemoryJournals`` is the factory and stands for the disk: the rows of each data dir
outlive the journal that wrote them, so a queue "restarted" on the same factory and data
dir rebuilds from them. States are copied in and out, as a table would (a caller
mutating a dict it passed or got back changes nothing journaled).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from v6ray import constants
from v6ray.errors import StorageError, TableLocked
from v6ray.queue.config import DEFAULT_RETENTION_DAYS, QueueConfig
from v6ray.queue.journal_api import FinalRequests, StateCounts, latest_states
from v6ray.requests.model import IBRequest
from v6ray.storage.schemas import table_path

Row = tuple[int, IBRequest]  # (seq, state)


@dataclass
class MemoryTables:
    """What one data dir holds: the hot journal's rows, the archive's, and its writer."""

    path: str
    hot: list[Row] = field(default_factory=list)
    archive: list[Row] = field(default_factory=list)
    version: int = 0  # commits to the hot journal, as a Delta table's version counts them
    files: int = 0  # one per append; a compaction leaves one per creation day
    writer: MemoryJournal | None = None
    # Compactions run on another thread than appends (as the queue runs them): one at a time.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def max_seq(self) -> int:
        return max((seq for seq, _ in (*self.hot, *self.archive)), default=0)


class MemoryJournal:
    """A ``RequestJournal`` over one data dir's ``MemoryTables`` (see the module doc)."""

    def __init__(self, tables: MemoryTables, *, retention_days: float = DEFAULT_RETENTION_DAYS):
        if tables.writer is not None and not tables.writer.closed:
            raise TableLocked(tables.path, f"another journal of pid {os.getpid()}", 0.0)
        tables.writer = self
        self.tables = tables
        self.retention = timedelta(days=retention_days)
        self._next_seq = 1  # positioned by load_for_restore, as the Delta journal is
        self.commits = 0
        self.rows = 0
        self.commits_since_compaction = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------ read

    def load_latest(self) -> list[IBRequest]:
        live, finals, _ = self.load_for_restore(final_limit=None)
        return [*live, *finals]

    def load_for_restore(
        self, final_limit: int | None
    ) -> tuple[list[IBRequest], FinalRequests, StateCounts]:
        with self.tables.lock:
            self._next_seq = self.tables.max_seq() + 1
            latest = [request for _, request in latest_states(self.tables.hot)]
        counts: StateCounts = Counter(
            (r.status, r.request_type, r.priority) for r in latest
        )
        finals = sorted((r for r in latest if r.is_final), key=lambda r: r.updated_at)
        if final_limit is not None:
            finals = finals[-final_limit:] if final_limit else []
        finals = [copy.deepcopy(r) for r in finals]
        live = [copy.deepcopy(r) for r in latest if not r.is_final]
        return live, FinalRequests([r.request_id for r in finals], finals.__getitem__), counts

    def lookup(self, request_id: str) -> IBRequest | None:
        # Hot first, archive second, as the Delta journal looks.
        with self.tables.lock:
            for rows in (self.tables.hot, self.tables.archive):
                found = [row for row in rows if row[1].request_id == request_id]
                if found:
                    return copy.deepcopy(max(found, key=lambda row: row[0])[1])
        return None

    # ------------------------------------------------------------------ write

    def append(self, requests: Sequence[IBRequest]) -> None:
        if not requests:
            return
        self._check_open()
        rows = [(self._next_seq + i, copy.deepcopy(r)) for i, r in enumerate(requests)]
        with self.tables.lock:
            self.tables.hot.extend(rows)
            self.tables.version += 1
            self.tables.files += 1
        self._next_seq += len(requests)
        self.commits += 1
        self.rows += len(requests)
        self.commits_since_compaction += 1

    def compact(self, now: float | None = None) -> dict[str, Any]:
        self._check_open()
        started = time.monotonic()
        self.commits_since_compaction = 0
        cutoff = datetime.fromtimestamp(time.time() if now is None else now, UTC) - self.retention
        tables = self.tables
        with tables.lock:
            latest = latest_states(tables.hot)
            moving = [row for row in latest if _archivable(row[1], cutoff)]
            kept = [row for row in latest if not _archivable(row[1], cutoff)]
            rows_before, files_read = len(tables.hot), tables.files
            tables.archive.extend(moving)
            tables.hot = kept
            tables.files = len({_day(request) for _, request in kept})
            if files_read:
                tables.version += 1
        return {
            "rows_before": rows_before,
            "rows_after": len(kept),
            "archived": len(moving),
            "files_read": files_read,
            "files_removed": files_read,
            "files": tables.files,
            "version": tables.version,
            "recovered": None,
            "archive_files_merged": 0,
            "seconds": round(time.monotonic() - started, 3),
        }

    def stats(self) -> dict[str, int]:
        return {
            "commits": self.commits,
            "rows": self.rows,
            "version": self.tables.version,
            "files": self.tables.files,
        }

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError(constants.REQUESTS_TABLE, "the journal is closed")


def _archivable(request: IBRequest, cutoff: datetime) -> bool:
    """Final and last changed before ``cutoff``, as ``v6ray.queue.compaction.archivable``."""
    return request.is_final and request.updated_at is not None and request.updated_at < cutoff


def _day(request: IBRequest) -> str:
    return "" if request.created_at is None else request.created_at.strftime("%Y%m%d")


class MemoryJournals:
    """A ``JournalFactory`` of memory journals whose rows outlive them, per data dir."""

    def __init__(self) -> None:
        self._tables: dict[str, MemoryTables] = {}

    def __call__(self, data_dir: str | os.PathLike[str], config: QueueConfig) -> MemoryJournal:
        return MemoryJournal(self.tables(data_dir), retention_days=config.retention_days)

    def tables(self, data_dir: str | os.PathLike[str]) -> MemoryTables:
        key = os.fspath(data_dir)
        if key not in self._tables:
            self._tables[key] = MemoryTables(table_path(key, constants.REQUESTS_TABLE))
        return self._tables[key]

    def read_requests(self, data_dir: str | os.PathLike[str]) -> list[IBRequest]:
        """The latest state of every journaled request, archived ones too, in creation
        order: what ``v6ray.read_table("ib_requests")`` shows of a Delta journal."""
        tables = self.tables(data_dir)
        with tables.lock:
            rows = [*tables.hot, *tables.archive]
        return [copy.deepcopy(r) for _, r in latest_states(rows)]
