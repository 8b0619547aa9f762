"""What the queue needs of its journal: the ``RequestJournal`` plug point and its rules.

The journal is the durable log of every request state change. Two implementations honour
this Protocol: ``v6ray.queue.journal.Journal`` (the Delta table ``ib_requests``, the one a
running queue uses) and ``v6ray.queue.memory_journal.MemoryJournal`` (an in-process twin
for tests, as dramatiq ships a stub broker). ``tests/unit/test_journal_contract.py`` runs
the same checks on both so they cannot drift apart.

The rules every journal follows:

- each appended state is a row with a ``seq`` higher than any row written before (a
  reopened journal continues after the highest, archived rows included, once it has
  loaded them with ``load_for_restore`` as a starting queue does);
- a request's state is its row with the highest ``seq``: ``latest_requests`` is that rule
  over a frame of rows (every reader of ``ib_requests`` applies it), ``latest_states``
  the same rule over rows held as objects;
- ``compact`` keeps the latest row of each request and moves finished requests last
  changed before the retention window out of what a restart reads, into the archive,
  where ``lookup`` still finds them;
- one writer at a time: opening a second one while the first is open fails with
  ``TableLocked`` (the Delta journal on object storage has no such lock); after ``close``
  the journal refuses writes but still answers reads.

No Delta and no Ray here: the queue's modules and ``v6ray.storage.reader`` import this one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import polars as pl

from v6ray.requests.model import IBRequest, Priority, RequestType, Status

if TYPE_CHECKING:
    from v6ray.queue.config import QueueConfig

# Counts of latest states by (status, type, priority): what a restart counts, not builds.
StateCounts = Counter[tuple[Status, RequestType, Priority]]


class FinalRequests:
    """Final requests, each made into its ``IBRequest`` only when asked for (a restarting
    queue keeps thousands of them for ``get``/``wait``; few are ever asked)."""

    def __init__(self, request_ids: list[str], build: Callable[[int], IBRequest]) -> None:
        self.request_ids = request_ids
        self.build = build  # index into request_ids -> that request

    def __len__(self) -> int:
        return len(self.request_ids)

    def __iter__(self) -> Iterator[IBRequest]:
        return (self.build(index) for index in range(len(self.request_ids)))

    def unbuilt(self) -> tuple[list[str], Callable[[int], IBRequest]]:
        """The ids, in order, and how to build each (``QueueCore.restore``'s unbuilt finals)."""
        return self.request_ids, self.build


@runtime_checkable
class RequestJournal(Protocol):
    """The durable log of the queue's request states (blocking calls; the queue runs them on
    its journal threads: appends and look-ups on one, compactions on another)."""

    # Appends since the last compaction began: the group committer compacts every N.
    commits_since_compaction: int

    def append(self, requests: Sequence[IBRequest]) -> None:
        """Make these states durable, in order, as one commit (all or none); raises
        ``StorageError`` once closed."""
        ...

    def load_for_restore(
        self, final_limit: int | None
    ) -> tuple[list[IBRequest], FinalRequests, StateCounts]:
        """What a restarting queue needs from the hot journal (not the archive): every live
        request, the ``final_limit`` most recently changed final ones (all for None),
        oldest first, and the counts of every latest state by (status, type, priority).
        Also positions ``seq`` after the last row, archived ones included."""
        ...

    def load_latest(self) -> list[IBRequest]:
        """The latest state of every request in the hot journal (not the archive)."""
        ...

    def lookup(self, request_id: str) -> IBRequest | None:
        """One request's latest state, archived ones included; None if never journaled."""
        ...

    def compact(self, now: float | None = None) -> dict[str, Any]:
        """Keep the latest row per request, archive the finished ones last changed before
        the retention window ending at ``now`` (epoch s; the clock by default). The report
        holds at least ``rows_before``, ``rows_after`` and ``files``, and ``archived``
        where the journal archives (not the Delta journal on object storage)."""
        ...

    def stats(self) -> dict[str, int]:
        """``commits`` and ``rows`` appended since opened, table ``version``, data ``files``."""
        ...

    def close(self) -> None:
        """Stop writing and let another writer open the journal (idempotent)."""
        ...


# How the queue opens its journal: (data dir, the queue's config) -> an open journal.
JournalFactory = Callable[[str, "QueueConfig"], RequestJournal]


def latest_requests(frame: pl.DataFrame, *, keep_journal_columns: bool = False) -> pl.DataFrame:
    """Latest state per request_id of the ``ib_requests`` journal (its row with max ``seq``).

    Sorted by creation. ``seq`` is journal bookkeeping and dropped unless asked for.
    """
    latest = (
        frame.sort("seq")
        .unique(subset=["request_id"], keep="last", maintain_order=True)
        .sort(["created_at", "seq"])
    )
    return latest if keep_journal_columns else latest.drop("seq")


def latest_states(rows: Iterable[tuple[int, IBRequest]]) -> list[tuple[int, IBRequest]]:
    """``latest_requests`` over (seq, request) rows held as objects: the row with the
    highest ``seq`` of each request, sorted by creation then ``seq``."""
    latest: dict[str, tuple[int, IBRequest]] = {}
    for seq, request in rows:
        kept = latest.get(request.request_id)
        if kept is None or seq > kept[0]:
            latest[request.request_id] = (seq, request)
    return sorted(latest.values(), key=lambda row: (row[1].created_at, row[0]))
