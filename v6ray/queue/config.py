"""Tunables of the request queue, one frozen dataclass (see ``QueueConfig``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

# Finished requests whose last change is older than this many days leave the hot journal
# for its archive (a restart reads only the former); V6RAY_QUEUE_RETENTION_DAYS overrides.
DEFAULT_RETENTION_DAYS = 30.0
RETENTION_ENV = "V6RAY_QUEUE_RETENTION_DAYS"


def retention_days_from_env() -> float:
    """``V6RAY_QUEUE_RETENTION_DAYS`` as days, or the default when it is unset or empty."""
    text = os.environ.get(RETENTION_ENV, "").strip()
    if not text:
        return DEFAULT_RETENTION_DAYS
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{RETENTION_ENV} must be a number of days, got {text!r}") from None


@dataclass(frozen=True)
class QueueConfig:
    """How the request queue schedules, retries and journals. Every field has a safe default."""

    # A claim is leased for this long; the gateway renews long-running requests before it
    # runs out, otherwise the request becomes claimable again (at-least-once execution).
    lease_seconds: float = 60.0
    # Claims per request before it is dead-lettered (FAILED) on a retryable error or lease loss.
    max_attempts: int = 5
    # Retry delay after attempt k: min(backoff_cap, backoff_base * 2**(k-1)), minus jitter.
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    backoff_jitter: float = 0.5
    # Anti-starvation: a waiting request's effective priority improves by one level per
    # ``aging_seconds`` waited (BACKGROUND after 2 x aging_seconds competes as IMMEDIATE).
    aging_seconds: float = 300.0
    # At most this many candidates are offered to ``accept`` per claim: bounds the cost of a
    # claim when the gateway's pacing budget rejects a long run of the backlog.
    claim_scan_limit: int = 5000
    # Final requests kept in memory for get()/wait(); older ones are answered from the table.
    terminal_cache_size: int = 20_000
    # Journal: compact (rewrite to the latest row per request, vacuum, checkpoint) after this
    # many appends; 0 disables automatic compaction (``compact()`` still works).
    compact_every_commits: int = 500
    # Journal: a group commit starts at least this long after the previous one started
    # (see GroupCommitter.min_interval); 0 commits back to back. A commit costs ~2 ms, so
    # spacing only trades commit CPU against latency: at 1,000 submits/s (bench/queue_bench)
    # 0.01 s gave p50 30 ms but ~100 commits/s, 0.04 s p50 63 ms; p99 was ~80 ms for both.
    commit_interval_seconds: float = 0.02
    # Journal: a commit that fails is retried this many times with jittered backoff.
    commit_retries: int = 5
    # Journal: how long a starting queue waits for the journal's writer lock (held by a
    # predecessor whose process is still exiting) before it fails with TableLocked.
    journal_lock_timeout_seconds: float = 30.0
    # How often the actor expires leases and wakes up delayed retries without being asked.
    housekeeping_seconds: float = 1.0
    # Journal: finished requests whose last change is older than this leave ib_requests for
    # ib_requests_archive at the next compaction; get()/read_table still find them there.
    retention_days: float = field(default_factory=retention_days_from_env)

    def __post_init__(self) -> None:
        positive = ("lease_seconds", "aging_seconds", "housekeeping_seconds", "retention_days")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"QueueConfig.{name} must be greater than 0")
        if self.max_attempts < 1:
            raise ValueError("QueueConfig.max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("QueueConfig.backoff_base/backoff_cap must not be negative")
        if not 0.0 <= self.backoff_jitter <= 1.0:
            raise ValueError("QueueConfig.backoff_jitter must be within [0, 1]")
        if self.claim_scan_limit < 1 or self.terminal_cache_size < 0:
            raise ValueError("QueueConfig.claim_scan_limit >= 1, terminal_cache_size >= 0")
        if self.commit_interval_seconds < 0 or self.journal_lock_timeout_seconds < 0:
            raise ValueError(
                "QueueConfig.commit_interval_seconds/journal_lock_timeout_seconds must not be "
                "negative"
            )
        if self.compact_every_commits < 0 or self.commit_retries < 0:
            raise ValueError("QueueConfig.compact_every_commits/commit_retries must be >= 0")

    def with_changes(self, **changes: Any) -> QueueConfig:
        return replace(self, **changes)
