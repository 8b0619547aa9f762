"""Group commit: many journal appends, one commit (asyncio, used by the queue actor).

Callers append request states and await the returned future; one writer coroutine takes
everything buffered so far, commits it in a worker thread (so the actor's event loop keeps
accepting calls meanwhile) and resolves the future of the whole batch. A commit has a
fixed cost (a file, a log entry, their fsyncs: ~2 ms) whatever its size, so under load
that cost is shared by every request of the batch instead of being paid per request.
Compactions run on a second thread, beside appends (the journal allows that), so a
compaction of a large journal never holds up an acknowledgement.

A failed commit (after the journal's own retries) fails its callers with ``StorageError``,
and its states stay owed: they go first into the next commit, and every ``append`` or
``barrier`` from then on resolves only once they are durable too. So a resubmit that
merges into a request whose first commit failed is acknowledged only once that request
is on disk (acknowledged => durable holds across any journal failure), and a caller told
"failed" may submit again safely.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from v6ray import constants
from v6ray.errors import StorageError
from v6ray.queue.journal_api import RequestJournal
from v6ray.requests.model import IBRequest

log = logging.getLogger(__name__)


class GroupCommitter:
    """Serializes every write of one journal through a single writer coroutine."""

    def __init__(
        self, journal: RequestJournal, *, compact_every_commits: int = 0, min_interval: float = 0.0
    ) -> None:
        self.journal = journal
        self.compact_every_commits = compact_every_commits
        # A commit starts at least this long after the previous one started: under load,
        # back-to-back commits would spend CPU on many tiny files; spacing them makes
        # batches bigger for a bounded added latency. An idle journal commits at once
        # (the previous start is long past).
        self.min_interval = min_interval
        self._last_start = float("-inf")
        # One thread: appends and table look-ups run strictly in order.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-requests")
        # Another for compactions: one at a time, never in the appends' way.
        self.maintenance = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-compact")
        self._auto_compaction: asyncio.Task[None] | None = None
        # States to commit, oldest first; a failed commit's states are put back in front.
        self._buffer: list[IBRequest] = []
        self._batch: asyncio.Future[None] | None = None  # resolves when _buffer is durable
        self._in_flight: asyncio.Future[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self.failed_commits = 0

    def append(self, requests: Sequence[IBRequest]) -> asyncio.Future[None]:
        """Buffer states for the next commit; the future resolves once they are durable."""
        if not requests:
            return self.barrier()
        self._buffer.extend(requests)
        return self._schedule()

    def barrier(self) -> asyncio.Future[None]:
        """Resolves once everything appended so far is durable (owed states included)."""
        if self._batch is not None:
            return self._batch
        if self._buffer:  # a failed commit's states: try them again now
            return self._schedule()
        if self._in_flight is not None:
            return self._in_flight
        done = self._new_future()
        done.set_result(None)
        return done

    async def compact(self) -> dict[str, Any]:
        """Compact the journal (appends go on meanwhile); returns the journal's report."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.maintenance, self.journal.compact)

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the journal's thread (e.g. a table look-up), in order with writes."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def stats(self) -> dict[str, int]:
        return {
            **self.journal.stats(),
            "buffered": len(self._buffer),
            "failed_commits": self.failed_commits,
        }

    # ------------------------------------------------------------------ writer

    def _new_future(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may await a batch (housekeeping changes): do not log its error as unretrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    def _schedule(self) -> asyncio.Future[None]:
        """The future of the next commit (which takes the whole buffer); starts the writer."""
        if self._batch is None:
            self._batch = self._new_future()
        self._wake()
        return self._batch

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._wakeup = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
        assert self._wakeup is not None
        self._wakeup.set()

    async def _write_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._batch is not None:  # owed states alone wait for the next caller
                loop = asyncio.get_running_loop()
                pause = self._last_start + self.min_interval - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # appends meanwhile join this batch
                self._last_start = loop.time()
                await self._commit_buffer()
                self._maybe_compact()

    async def _commit_buffer(self) -> None:
        rows, batch = self._buffer, self._batch
        assert batch is not None
        self._buffer, self._batch, self._in_flight = [], None, batch
        try:
            await self.run_blocking(self.journal.append, rows)
        except Exception as exc:
            # The callers see a v6ray error. Their changes stay in memory and stay owed:
            # first in the next commit, which every later acknowledgement waits for.
            self.failed_commits += 1
            self._buffer[:0] = rows
            log.error("journal commit of %d states failed: %s", len(rows), exc)
            batch.set_exception(StorageError(constants.REQUESTS_TABLE, str(exc)))
        else:
            batch.set_result(None)
        finally:
            self._in_flight = None

    def _maybe_compact(self) -> None:
        due = (
            self.compact_every_commits
            and self.journal.commits_since_compaction >= self.compact_every_commits
        )
        running = self._auto_compaction is not None and not self._auto_compaction.done()
        if due and not running:
            self._auto_compaction = asyncio.get_running_loop().create_task(self._compact_logged())

    async def _compact_logged(self) -> None:
        try:
            await self.compact()
        except Exception as exc:  # the journal stays correct, only bigger: try next period
            # (the journal's compact restarted the count when it began.)
            log.error("journal compaction failed: %s", exc)
