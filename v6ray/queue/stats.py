"""The queue's ``stats()`` dict, built from the core's counters (pure, JSON-serializable)."""

from __future__ import annotations

from typing import Any

from v6ray.queue.core import QueueCore
from v6ray.requests.model import Priority, RequestType, Status


def _zeros() -> dict[str, int]:
    return {status.value: 0 for status in Status}


def queue_stats(core: QueueCore, now: float) -> dict[str, Any]:
    """Counts by status / type / priority over every request the queue knows of."""
    depth = _zeros()
    by_type = {t.value: _zeros() for t in RequestType}
    by_priority = {str(p.value): _zeros() for p in Priority}
    for (status, rtype, priority), n in core.counts.items():
        if n:
            depth[status.value] += n
            by_type[rtype.value][status.value] += n
            by_priority[str(priority.value)][status.value] += n
    oldest = core.oldest_pending_created()
    return {
        "depth": depth,
        "by_type": by_type,
        "by_priority": by_priority,
        "in_flight": core.in_flight,
        "oldest_pending_age_s": None if oldest is None else max(0.0, now - oldest),
        "recent_failures": list(core.recent_failures),
        "submitted_total": core.submitted_total,
        "coalesced_total": core.coalesced_total,
    }
