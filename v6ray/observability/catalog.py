"""Every metric v6ray exports, as data (pure).

Names start with ``v6ray_``; Ray's Prometheus endpoint shows them as ``ray_v6ray_…``
(counters with ``_total``, histograms as ``_bucket``/``_sum``/``_count``). Tags follow
DESIGN.md: ``request_type``, ``priority``, ``status``, ``table``, ``code`` where they apply.
The Grafana dashboard (grafana/v6ray.json) and its test use this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"  # only goes up; Prometheus' rate() gives per second
    GAUGE = "gauge"  # the last value set
    HISTOGRAM = "histogram"  # observations in buckets (latencies)


# Seconds: from a few ms (a group commit) to an hour (a backlog of BACKGROUND requests).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0, 900.0, 3600.0)
COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    description: str
    tags: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def exported(self) -> tuple[str, ...]:
        """The series names on Ray's Prometheus endpoint."""
        base = f"ray_{self.name}"
        if self.kind is Kind.COUNTER:
            return (f"{base}_total",)
        if self.kind is Kind.HISTOGRAM:
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)


_SPECS = (
    # --- the queue --------------------------------------------------------------------
    MetricSpec("v6ray_queue_depth", Kind.GAUGE,
               "Requests the queue knows of, by status and priority", ("status", "priority")),
    MetricSpec("v6ray_queue_in_flight", Kind.GAUGE, "Requests leased to the gateway"),
    MetricSpec("v6ray_queue_oldest_pending_age_seconds", Kind.GAUGE,
               "Age of the oldest PENDING request"),
    MetricSpec("v6ray_requests_submitted", Kind.COUNTER,
               "New requests queued (coalesced duplicates not counted)",
               ("request_type", "priority")),
    MetricSpec("v6ray_requests_finished", Kind.COUNTER,
               "Requests that reached a final status", ("request_type", "status")),
    MetricSpec("v6ray_request_failures", Kind.COUNTER,
               "Failed attempts (retried or final), by IB error code",
               ("request_type", "code")),
    MetricSpec("v6ray_submit_durable_seconds", Kind.HISTOGRAM,
               "Submit to durable in ib_requests (the group commit)", (), LATENCY_BUCKETS),
    MetricSpec("v6ray_request_latency_seconds", Kind.HISTOGRAM,
               "Enqueue to final status", ("request_type", "status"), LATENCY_BUCKETS),
    # --- the gateway ------------------------------------------------------------------
    MetricSpec("v6ray_ib_messages_sent", Kind.COUNTER, "Messages sent to IB"),
    MetricSpec("v6ray_pacing_used", Kind.GAUGE,
               "Use of each IB pacing budget now (messages in the 1-s window, small-bar "
               "requests in the 10-min window, open historical requests, market-data lines)",
               ("budget",)),
    MetricSpec("v6ray_pacing_limit", Kind.GAUGE, "IB's limit of each pacing budget",
               ("budget",)),
    MetricSpec("v6ray_ib_errors", Kind.COUNTER, "IB error messages received, by code",
               ("code",)),
    MetricSpec("v6ray_gateway_connection", Kind.GAUGE,
               "1 for the IB connection's current state, 0 for the others", ("state",)),
    MetricSpec("v6ray_gateway_circuit", Kind.GAUGE,
               "1 for the circuit breaker's current state, 0 for the others", ("state",)),
    MetricSpec("v6ray_gateway_in_flight", Kind.GAUGE, "Requests the gateway is executing"),
    MetricSpec("v6ray_gateway_reconnects", Kind.COUNTER, "Reconnections to IB"),
    # --- writer tasks -----------------------------------------------------------------
    MetricSpec("v6ray_writer_rows", Kind.COUNTER, "Rows merged into a Delta table",
               ("table",)),
    MetricSpec("v6ray_writer_commit_seconds", Kind.HISTOGRAM,
               "One Delta MERGE commit, retries included", ("table",), COMMIT_BUCKETS),
    MetricSpec("v6ray_writer_conflicts", Kind.COUNTER,
               "Commits retried after a conflicting concurrent commit", ("table",)),
    # --- the scheduler ----------------------------------------------------------------
    MetricSpec("v6ray_scheduler_jobs_run", Kind.COUNTER, "Scheduler job runs", ("job",)),
    MetricSpec("v6ray_scheduler_jobs_skipped", Kind.COUNTER,
               "Job runs skipped because the previous run is still queued", ("job",)),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}

# Connection and circuit states, each exported as its own 0/1 series.
CONNECTION_STATES = ("connecting", "connected", "disconnected", "stopping", "stopped")
CIRCUIT_STATES = ("closed", "open", "half_open")
PACING_BUDGETS = ("messages", "small_bar", "historical_open", "lines")


def exported_names() -> set[str]:
    """Every series name v6ray puts on Ray's Prometheus endpoint."""
    return {name for spec in _SPECS for name in spec.exported}
