"""The queue's durable log: the Delta table ``ib_requests`` (blocking I/O, no asyncio), the
``RequestJournal`` a running queue uses (``v6ray.queue.journal_api``).

Layout: append-only, one row per state change holding the request's whole new state and a
``seq`` that increases with every row ever written. A request's state is its row with the
highest ``seq`` (``journal_api.latest_requests``, which ``v6ray.read_table("ib_requests")``
applies for readers too).

Appends are hand-built Delta commits (``LocalAppender``): the queue pays one per
acknowledged batch, and delta-rs's commit path costs 5-10 times more.

Compaction rewrites the files appended since the last one, with the day files of the
days their requests were created, to their latest rows (``seq`` kept, so it keeps
increasing) in one commit that removes exactly the files it read, then vacuums and
checkpoints, so the file count and the log stay bounded. Finished requests older than the
retention window move to ``ib_requests_archive`` in the same pass, and a restart reads only
``ib_requests``: restart and compaction cost follow the recent work, not the history
(``v6ray.queue.compaction``, ``v6ray.queue.archive``). It runs beside appends, on its own
thread: rows appended meanwhile are in files it does not remove, and their higher ``seq``
wins over anything it wrote.

Only one ``Journal`` writes the table at a time, in any process: it holds the table's
writer lock (``v6ray.storage.writer_lock``) from open to ``close`` (or its process's
death). A second one waits ``lock_timeout`` s for it, then fails with ``TableLocked``.
Readers (``read_requests``, ``v6ray.read_table``) take no lock.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from v6ray import constants
from v6ray.errors import SchemaMismatch, StorageError
from v6ray.pacing.costs import NO_COST
from v6ray.queue.archive import RequestArchive
from v6ray.queue.compaction import compact_journal, day_files
from v6ray.queue.config import DEFAULT_RETENTION_DAYS, QueueConfig
from v6ray.queue.journal_api import FinalRequests, StateCounts, latest_requests
from v6ray.requests.model import IBRequest, Priority, RequestType, Status, canonical_json, dedup_key
from v6ray.requests.registry import spec_for
from v6ray.storage import object_store_append
from v6ray.storage.local_append import LocalAppender, remove_stale_files
from v6ray.storage.location import is_uri, storage_options_for
from v6ray.storage.reader import retry_vacuum_race, with_archived_requests
from v6ray.storage.schemas import IB_REQUESTS_SCHEMA, UTC_TIMESTAMP, table_path
from v6ray.storage.writer_lock import writer_lock

log = logging.getLogger(__name__)

# Old log entries are useless to the only reader of history (the queue actor, at start):
# let Delta drop those before each checkpoint.
TABLE_CONFIGURATION = {"delta.logRetentionDuration": "interval 0 seconds"}
# How long a second writer waits for the table's writer lock: covers a queue actor that
# Ray restarts while its predecessor's process is still exiting.
LOCK_TIMEOUT_SECONDS = 30.0
# Files no commit names are deleted only once this old. A live writer's data file waits
# for its commit at most for the commit's retries (seconds) or a compaction's rewrite (a
# minute for a very large journal); crash leftovers can wait an hour at no cost.
STALE_FILE_AGE_SECONDS = 3600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Journal:
    """Append request states to ``ib_requests`` and read them back (the queue's
    ``RequestJournal``, see ``v6ray.queue.journal_api``)."""

    @classmethod
    def for_queue(cls, data_dir: str, config: QueueConfig) -> Journal:
        """The journal a ``RequestQueue`` opens by default (its ``JournalFactory``)."""
        return cls(
            data_dir,
            commit_retries=config.commit_retries,
            lock_timeout=config.journal_lock_timeout_seconds,
            retention_days=config.retention_days,
        )

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        commit_retries: int = 5,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
        stale_file_age: float = STALE_FILE_AGE_SECONDS,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.path = table_path(data_dir, constants.REQUESTS_TABLE)
        # Finished requests last changed longer ago than this go to the archive.
        self.retention = timedelta(days=retention_days)
        self.archive = RequestArchive(data_dir, configuration=TABLE_CONFIGURATION,
                                      stale_file_age=stale_file_age)
        self.commit_retries = commit_retries
        self.stale_file_age = stale_file_age
        # A table on object storage (s3://...) appends and compacts through deltalake's
        # commit (``object_store_append``); the hand-built path needs a POSIX file system.
        self.on_object_store = is_uri(self.path)
        self._options = storage_options_for(self.path)  # from this process's environment
        if not self.on_object_store:
            os.makedirs(self.path, exist_ok=True)
        self._lock = writer_lock(self.path)
        self._lock.acquire(lock_timeout)  # before anything is written, the table's creation too
        try:
            retry_vacuum_race(self._open)  # its log listing may race another writer's commit
        except BaseException:
            self._lock.release()
            raise
        self._next_seq = 1
        self.commits = 0  # appends since this process opened the journal
        self.rows = 0  # rows appended since this process opened the journal
        self.commits_since_compaction = 0
        self.files = len(self._table.file_uris())
        self.closed = False

    def _open(self) -> None:
        if self.on_object_store:
            self._open_object_store()
            return
        DeltaTable.create(self.path, schema=IB_REQUESTS_SCHEMA, mode="ignore",
                          configuration=TABLE_CONFIGURATION)
        self._table = DeltaTable(self.path)  # reads and compactions (refreshed before use)
        # Appends skip delta-rs's commit path: ~1-2 ms instead of ~10-40 ms each, and the
        # queue pays one per acknowledged batch. The stats let look-ups skip files.
        self._appender = LocalAppender(self.path, stats_columns=("request_id", "seq"))
        # What an append or compaction cut short by a crash left behind (old enough that
        # no writer, even one that ignores the lock, is about to commit it).
        remove_stale_files(self.path, self._table, min_age_seconds=self.stale_file_age)

    def _open_object_store(self) -> None:
        configuration = {**TABLE_CONFIGURATION, **object_store_append.TABLE_CONFIGURATION}
        DeltaTable.create(self.path, schema=IB_REQUESTS_SCHEMA, mode="ignore",
                          configuration=configuration, storage_options=self._options)
        self._table = DeltaTable(self.path, storage_options=self._options)
        self._appender = object_store_append.ObjectStoreAppender(self.path, self._options)

    def close(self) -> None:
        """Stop writing and give the writer lock up (idempotent); reads still work."""
        self.closed = True
        self._lock.release()

    @property
    def version(self) -> int:
        return self._appender.version

    # ------------------------------------------------------------------ read

    def load_latest(self) -> list[IBRequest]:
        """The latest state of every request in the hot journal (not the archive); also
        positions ``seq`` after the last row."""
        live, finals, _ = self.load_for_restore(final_limit=None)
        return [*live, *finals]

    def load_for_restore(
        self, final_limit: int | None
    ) -> tuple[list[IBRequest], FinalRequests, StateCounts]:
        """What a restarting queue needs, from the hot journal only: every live request,
        the rows of the ``final_limit`` most recently changed final ones (all for None),
        oldest first, and the count of latest states by (status, type, priority) over the
        whole hot journal.

        Only live requests become objects: final ones stay rows until asked for, the rest
        are counted in columns, so a restart over a long retention window does not pay
        per finished request. Also positions ``seq`` after the last row of either table.
        """
        frame = self._read_frame()
        self._next_seq = max(int(frame["seq"].max() or 0), self.archive.max_seq()) + 1
        latest = latest_requests(frame)
        final = latest["status"].is_in([s.value for s in Status if s.is_final])
        live_rows = latest.filter(~final)
        final_frame = latest.filter(final).sort("updated_at")
        if final_limit is not None:
            final_frame = final_frame.tail(final_limit)
        counts: StateCounts = Counter()
        grouped = latest.group_by(["status", "request_type", "priority"]).len()
        for status, rtype, priority, n in grouped.iter_rows():
            counts[(Status(status), RequestType(rtype), Priority(priority))] = n
        return (
            [request_from_row(row) for row in live_rows.iter_rows(named=True)],
            final_rows(final_frame),
            counts,
        )

    def lookup(self, request_id: str) -> IBRequest | None:
        """One request's latest state, read from the table (for ones evicted from memory);
        a request not in the hot journal is looked for in the archive (a slower read)."""

        def read() -> pl.DataFrame:  # a compaction may vacuum files under this snapshot
            self._table.update_incremental()
            return pl.from_arrow(
                self._table.to_pyarrow_table(filters=[("request_id", "=", request_id)])
            )

        # Hot first, archive second: a move commits to the archive before it leaves the
        # hot journal, so a request moving meanwhile is found in one or the other.
        frame = retry_vacuum_race(read)
        if not frame.height:
            frame = read_archived(self.archive.path, request_id)
        if not frame.height:
            return None
        return request_from_row(frame.sort("seq").row(-1, named=True))

    def _read_frame(self) -> pl.DataFrame:
        def read() -> pl.DataFrame:
            self._table.update_incremental()
            return pl.from_arrow(self._table.to_pyarrow_table())

        return retry_vacuum_race(read)

    # ------------------------------------------------------------------ write

    def append(self, requests: Sequence[IBRequest]) -> None:
        """Commit one row per state, in order, as one Delta commit (retried on failure)."""
        if not requests:
            return
        if self.closed:
            raise StorageError(constants.REQUESTS_TABLE, "the journal is closed")
        batch = requests_to_arrow(requests, self._next_seq)
        self._retrying(lambda: self._appender.append(batch))
        self._next_seq += len(requests)
        self.commits += 1
        self.rows += len(requests)
        self.commits_since_compaction += 1
        self.files += 1

    def compact(self, now: float | None = None) -> dict[str, Any]:
        """Rewrite what changed since the last compaction to the latest row per request,
        move finished requests older than the retention window to the archive, vacuum the
        replaced files, checkpoint the log (``v6ray.queue.compaction``). ``now``: epoch
        seconds the window ends at (the clock by default).

        Safe to run on another thread than ``append`` (see the module doc); not twice at once.
        """
        if self.closed:
            raise StorageError(constants.REQUESTS_TABLE, "the journal is closed")
        if self.on_object_store:
            return self._compact_object_store()
        self.commits_since_compaction = 0  # appends from now on count toward the next one
        report = compact_journal(self, time.time() if now is None else now)
        self.files = report["files"]
        return report

    def _compact_object_store(self) -> dict[str, Any]:
        # The whole table rewritten to its latest rows through deltalake, nothing archived:
        # the day-file tiers and the archive's crash-safe move (``v6ray.queue.compaction``,
        # ``v6ray.queue.archive``) are built on a POSIX file system (hard links, a manifest
        # file, os.remove). On object storage a restart still reads all history.
        self.commits_since_compaction = 0

        def keep_latest(frame: pl.DataFrame) -> pa.Table:
            latest = latest_requests(frame, keep_journal_columns=True)
            return latest.to_arrow().cast(IB_REQUESTS_SCHEMA)

        done: dict[str, Any] = {}
        self._retrying(lambda: done.update(self._appender.compact(keep_latest)))
        self.files = done["files"]
        return done

    def commit_rewrite(self, kept: pl.DataFrame, removes: list[dict[str, Any]]) -> None:
        """Publish a compaction: ``kept`` as day files, ``removes`` in the same commit."""
        def commit() -> None:  # a refused commit deleted its files: write them again
            adds = [{"add": self._appender.write_file(rows, name_prefix=prefix)}
                    for prefix, rows in day_files(kept)]
            self._appender.commit([*adds, *removes], operation="OPTIMIZE")

        self._retrying(commit)

    def _retrying(self, commit: Callable[[], Any]) -> None:
        attempt = 0
        while True:
            try:
                commit()
                break
            except SchemaMismatch:
                raise  # the same rows would not fit the next time either
            except Exception as exc:  # CommitFailedError, I/O errors: retry with jitter
                attempt += 1
                if attempt > self.commit_retries:
                    raise
                log.warning("ib_requests commit failed (attempt %d): %s", attempt, exc)
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random() / 2))

    def stats(self) -> dict[str, int]:
        return {
            "commits": self.commits,
            "rows": self.rows,
            "version": self.version,
            "files": self.files,
        }


def final_rows(frame: pl.DataFrame) -> FinalRequests:
    """Rows of final requests, each made into its ``IBRequest`` only when asked for."""
    return FinalRequests(
        frame["request_id"].to_list(), lambda index: request_from_row(frame.row(index, named=True))
    )


def read_requests(data_dir: str | os.PathLike[str]) -> list[IBRequest]:
    """The latest state of every journaled request, archived ones too, read without the
    writer lock."""
    path = table_path(data_dir, constants.REQUESTS_TABLE)
    options = storage_options_for(path)
    if not DeltaTable.is_deltatable(path, storage_options=options):
        return []
    frame = retry_vacuum_race(
        lambda: pl.from_arrow(DeltaTable(path, storage_options=options).to_pyarrow_table())
    )
    frame = with_archived_requests(frame, os.fspath(data_dir))
    return [request_from_row(row) for row in latest_requests(frame).iter_rows(named=True)]


def read_archived(archive_path: str, request_id: str) -> pl.DataFrame:
    """The archive's rows of ``request_id`` (none when there is no archive yet): a read of
    every archive file's request_id column, slower than the hot journal's, and rare (ids
    of requests finished before the retention window)."""
    if not DeltaTable.is_deltatable(archive_path):
        return pl.DataFrame(IB_REQUESTS_SCHEMA.empty_table())
    return retry_vacuum_race(lambda: pl.from_arrow(DeltaTable(archive_path).to_pyarrow_table(
        filters=[("request_id", "=", request_id)])))


# ---------------------------------------------------------------------- conversions


def _micros(stamp: datetime | None) -> int | None:
    return None if stamp is None else (stamp - _EPOCH) // _MICROSECOND


def _timestamps(values: list[datetime | None]) -> pa.Array:
    # int64 then cast: ~7x faster than letting Arrow convert tz-aware datetimes one by one.
    return pa.array([_micros(v) for v in values], type=pa.int64()).cast(UTC_TIMESTAMP)


def _parameters_json(request: IBRequest) -> str:
    # The dedup key ends with the canonical parameters JSON ("type|SYMBOL|{...}"; neither
    # type nor symbol may hold "|"): reusing it saves a json.dumps per journaled state.
    if request.dedup_key:
        return request.dedup_key.split("|", 2)[2]
    return canonical_json(request.parameters)


def requests_to_arrow(requests: Sequence[IBRequest], first_seq: int) -> pa.Table:
    """Build the rows column by column (per-request Python work is the hot path)."""
    n = len(requests)
    columns = [
        pa.array([r.request_id for r in requests], pa.string()),
        pa.array([r.request_type.value for r in requests], pa.string()),
        pa.array([r.symbol for r in requests], pa.string()),
        pa.array([int(r.priority) for r in requests], pa.int32()),
        pa.array([r.status.value for r in requests], pa.string()),
        pa.array([_parameters_json(r) for r in requests], pa.string()),
        pa.array([r.result_table for r in requests], pa.string()),
        _timestamps([r.created_at for r in requests]),
        _timestamps([r.updated_at for r in requests]),
        pa.array([r.attempts for r in requests], pa.int32()),
        pa.array([r.error_message for r in requests], pa.string()),
        pa.array(
            [None if r.result_data is None else canonical_json(r.result_data) for r in requests],
            pa.string(),
        ),
        pa.array(range(first_seq, first_seq + n), pa.int64()),
        _timestamps([r.not_before for r in requests]),
        pa.array([r.lease_owner for r in requests], pa.string()),
        _timestamps([r.lease_expires_at for r in requests]),
    ]
    return pa.Table.from_arrays(columns, schema=IB_REQUESTS_SCHEMA)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def request_from_row(row: dict[str, Any]) -> IBRequest:
    """An ``ib_requests`` row back into the request it records."""
    rtype = RequestType(row["request_type"])
    parameters = json.loads(row["parameters"]) if row["parameters"] else {}
    result = row.get("result_data")
    status = Status(row["status"])
    return IBRequest(
        request_id=row["request_id"],
        request_type=rtype,
        symbol=row["symbol"],
        priority=Priority(row["priority"]),
        status=status,
        parameters=parameters,
        result_table=row["result_table"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        attempts=row["attempts"] or 0,
        error_message=row.get("error_message"),
        result_data=json.loads(result) if result else None,
        not_before=_utc(row.get("not_before")),
        lease_owner=row.get("lease_owner"),
        lease_expires_at=_utc(row.get("lease_expires_at")),
        dedup_key=dedup_key(rtype, row["symbol"], parameters),
        # What it takes of IB's budgets, for the claim; a finished request is never claimed.
        cost=NO_COST if status.is_final else spec_for(rtype).cost(parameters),
    )
