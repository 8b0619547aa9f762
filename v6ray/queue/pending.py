"""Where PENDING requests wait (pure): a ready heap per priority and a retry-backoff heap.

Ready heaps are ordered by creation time. Aging only ever improves the older requests of a
level, so each heap's head is also that level's best request under aging, and the best
request overall is found by comparing three heads: no claim sorts the backlog.

Entries are never removed in place: each waiting request holds a token, and an entry whose
token is no longer its request's current one (cancelled, claimed, moved to another level)
is stale and dropped when it surfaces, or when stale entries outnumber live ones (then
the heaps are rebuilt, so cancelling deep in a large backlog cannot grow them unbounded).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from v6ray.requests.model import IBRequest, Priority

Entry = tuple[float, int, int, str]  # (creation or not_before time, tie, token, request_id)
Popped = tuple[int, Entry]  # (priority level, entry)
REBUILD_SLACK = 1024  # stale entries tolerated beyond the number of live ones


class PendingIndex:
    def __init__(self, aging_seconds: float) -> None:
        self.aging_seconds = aging_seconds
        self._ready: dict[int, list[Entry]] = {p.value: [] for p in Priority}
        self._delayed: list[Entry] = []
        self._token: dict[str, int] = {}  # request_id -> token of its current entry
        self._tie = itertools.count()
        self._entries = 0  # heap entries pushed and not yet popped, stale ones included

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._token

    @staticmethod
    def is_delayed(request: IBRequest, now: float) -> bool:
        return request.not_before is not None and request.not_before.timestamp() > now

    def add(self, request: IBRequest, now: float) -> None:
        """Wait in the backoff heap until ``not_before``, else in the ready heap of its level."""
        if self.is_delayed(request, now):
            token = next(self._tie)
            self._token[request.request_id] = token
            due = request.not_before.timestamp()  # type: ignore[union-attr]
            heapq.heappush(self._delayed, (due, token, token, request.request_id))
            self._pushed()
        else:
            self.add_ready(request)

    def add_ready(self, request: IBRequest) -> None:
        """(Re)queue at its priority level; any previous entry of the request turns stale."""
        token = next(self._tie)
        self._token[request.request_id] = token
        entry = (request.created_at.timestamp(), token, token, request.request_id)
        heapq.heappush(self._ready[request.priority.value], entry)
        self._pushed()

    def discard(self, request_id: str) -> None:
        self._token.pop(request_id, None)

    def promote_due(self, now: float, lookup: Callable[[str], IBRequest]) -> None:
        """Move requests whose backoff has passed to the ready heaps."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, token, rid = heapq.heappop(self._delayed)
            self._entries -= 1
            if self._token.get(rid) == token:
                self.add_ready(lookup(rid))

    def pop_best(self, now: float) -> Popped | None:
        """Remove and return the best ready entry: effective priority, then age."""
        best_key: tuple[int, float, int] | None = None
        best_level = 0
        for level, heap in self._ready.items():
            if self._drop_stale(heap):
                created, tie = heap[0][0], heap[0][1]
                waited = max(0.0, now - created)  # unique creation stamps may lie ahead of now
                effective = max(1, level - int(waited // self.aging_seconds))
                key = (effective, created, tie)
                if best_key is None or key < best_key:
                    best_key, best_level = key, level
        if best_key is None:
            return None
        self._entries -= 1
        return best_level, heapq.heappop(self._ready[best_level])

    def put_back(self, popped: Popped) -> None:
        """Undo ``pop_best`` for a request that stays queued (its place is unchanged)."""
        level, entry = popped
        heapq.heappush(self._ready[level], entry)
        self._entries += 1

    def oldest_created(self, lookup: Callable[[str], IBRequest]) -> float | None:
        """Creation time of the oldest waiting request, ready or in backoff."""
        oldest = [heap[0][0] for heap in self._ready.values() if self._drop_stale(heap)]
        oldest.extend(
            lookup(rid).created_at.timestamp()
            for _, _, token, rid in self._delayed
            if self._token.get(rid) == token
        )
        return min(oldest, default=None)

    def _drop_stale(self, heap: list[Entry]) -> bool:
        while heap and self._token.get(heap[0][3]) != heap[0][2]:
            heapq.heappop(heap)
            self._entries -= 1
        return bool(heap)

    def _is_current(self, entry: Entry) -> bool:
        return self._token.get(entry[3]) == entry[2]

    def _pushed(self) -> None:
        self._entries += 1
        if self._entries > 2 * len(self._token) + REBUILD_SLACK:
            for level, heap in self._ready.items():
                self._ready[level] = [e for e in heap if self._is_current(e)]
                heapq.heapify(self._ready[level])
            self._delayed = [e for e in self._delayed if self._is_current(e)]
            heapq.heapify(self._delayed)
            self._entries = sum(map(len, self._ready.values())) + len(self._delayed)

    @property
    def heap_entries(self) -> int:
        return self._entries
