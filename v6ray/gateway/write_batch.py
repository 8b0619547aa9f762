"""WriteBatcher: results of many requests → one Delta MERGE per table at a time.

Handlers return plain row dicts; the batcher turns a whole batch into one Arrow table (one
chunk per column) just before it goes to a writer task. Per request that is ~1 µs per row
instead of ~130 µs for a one-row table of its own, and Ray ships one chunk per column
instead of one per request (both profiled as the gateway's largest costs per request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.handlers import Rows
from v6ray.gateway.parsing import to_table
from v6ray.service.placement import WriterRotation
from v6ray.storage.writer import write_rows

log = logging.getLogger(__name__)

# What pyarrow raises for a value that does not fit its column.
CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


class WriteBatcher:
    """Per-table buffers, flushed at ``write_batch_rows`` rows or ``write_batch_seconds``.

    One commit per table at a time from this gateway: while it runs, results accumulate
    and go out together next (bigger commits under load, no self-inflicted merge
    conflicts); different tables are written in parallel by separate writer tasks.
    """

    def __init__(self, data_dir: str, config: GatewayConfig, writer: Any = write_rows,
                 rotation: WriterRotation | None = None) -> None:
        self.data_dir = data_dir
        self.config = config
        self._writer = writer  # the @ray.remote task (tests pass a stand-in)
        # Which node each commit goes to (placement.py says why); None: Ray's SPREAD.
        self._rotation = rotation
        self._refreshing: asyncio.Task | None = None
        self.commits_by_node: dict[str, int] = {}
        self._buffers: dict[str, list[_Piece]] = {}
        self._buffered_rows: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._committing: dict[str, asyncio.Task] = {}
        self.commits = 0
        self.rows_written = 0
        self.conflicts = 0  # commits the writer tasks retried after another writer's commit

    async def write(
        self, table: str, rows: Rows, *, replacing: str | None = None
    ) -> dict[str, Any]:
        """Rows of one request; returns its result_data once they are committed.

        ``replacing``: this request's id when an earlier attempt of it may have committed
        rows; this commit then replaces them (``merge_rows``' ``replace_requests``).
        """
        if not rows:  # (a retry that finds nothing leaves an earlier attempt's rows)
            return {"table": table, "rows": 0, "delta_version": None}
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._buffers.setdefault(table, []).append(_Piece(rows, future, replacing))
        self._buffered_rows[table] = self._buffered_rows.get(table, 0) + len(rows)
        if self._buffered_rows[table] >= self.config.write_batch_rows:
            self._flush(table)
        elif table not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[table] = loop.call_later(
                self.config.write_batch_seconds, self._flush, table
            )
        return await future

    def _flush(self, table: str) -> None:
        timer = self._timers.pop(table, None)
        if timer is not None:
            timer.cancel()
        if table in self._committing:
            return  # picked up when the running commit ends
        batch = self._buffers.pop(table, [])
        self._buffered_rows.pop(table, None)
        if batch:
            task = asyncio.get_running_loop().create_task(self._commit(table, batch))
            self._committing[table] = task

    async def _commit(self, table: str, batch: list[_Piece]) -> None:
        try:
            arrow, batch = _to_arrow(table, batch)
            if not batch:
                return
            replaced = [piece.replacing for piece in batch if piece.replacing is not None]
            options = {"replace_requests": replaced} if replaced else {}
            writer = self._writer_for_next_commit()
            result = await writer.remote(self.data_dir, table, arrow, **options)
        except Exception as exc:  # StorageError or a lost writer: every request retries
            for piece in batch:
                if not piece.future.done():
                    piece.future.set_exception(exc)
        else:
            self.commits += 1
            self.rows_written += arrow.num_rows
            self.conflicts += int(result.get("conflicts") or 0)
            for piece in batch:
                if not piece.future.done():
                    piece.future.set_result({**result, "rows": len(piece.rows)})
        finally:
            self._committing.pop(table, None)
            if self._buffers.get(table):
                self._flush(table)

    def _writer_for_next_commit(self) -> Any:
        rotation = self._rotation
        if rotation is None:
            return self._writer
        if rotation.never_fetched:
            self._refresh_now(rotation)  # once: the first commit goes somewhere chosen too
        elif rotation.stale and self._refreshing is None:
            # ray.nodes() asks the GCS: later asks run off the event loop (IB's pacing).
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh(rotation))
        node = rotation.next_node()
        if node is None:
            return self._writer
        self.commits_by_node[node] = self.commits_by_node.get(node, 0) + 1
        return self._writer.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True)
        )

    async def _refresh(self, rotation: WriterRotation) -> None:
        try:
            await asyncio.to_thread(self._refresh_now, rotation)
        finally:
            self._refreshing = None

    @staticmethod
    def _refresh_now(rotation: WriterRotation) -> None:
        try:
            rotation.refresh()
        except Exception:  # the GCS is briefly unreachable: keep the old list, ask again
            log.warning("writer node list not refreshed", exc_info=True)

    async def flush_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (self._buffers or self._committing) and time.monotonic() < deadline:
            for table in list(self._buffers):
                self._flush(table)
            running = list(self._committing.values())
            if running:
                await asyncio.wait(running, timeout=max(0.01, deadline - time.monotonic()))


@dataclass
class _Piece:
    """One request's rows waiting in a batch."""

    rows: Rows
    future: asyncio.Future[dict]
    replacing: str | None  # the request id, when its earlier rows are to be replaced


def _to_arrow(table: str, batch: list[_Piece]) -> tuple[pa.Table, list[_Piece]]:
    """The batch as one table; a request whose rows do not convert fails alone (its
    future gets the error) instead of failing every request that shares its batch."""
    try:
        return to_table(table, [row for piece in batch for row in piece.rows]), batch
    except CONVERSION_ERRORS:
        pass
    good: list[_Piece] = []
    for piece in batch:
        try:
            to_table(table, piece.rows)
        except CONVERSION_ERRORS as exc:
            piece.future.set_exception(exc)
        else:
            good.append(piece)
    return to_table(table, [row for piece in good for row in piece.rows]), good
