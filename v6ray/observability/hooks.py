"""One-call hooks for the writer tasks and the scheduler (each a line at its call site)."""

from __future__ import annotations

from v6ray.observability.metrics import recorder


def writer_committed(table: str, rows: int, seconds: float, conflicts: int) -> None:
    """A writer task merged ``rows`` into ``table`` in ``seconds``, after ``conflicts``
    conflicting commits that it retried."""
    rec = recorder()
    tags = {"table": table}
    rec.observe("v6ray_writer_commit_seconds", max(0.0, seconds), tags)
    if rows:
        rec.inc("v6ray_writer_rows", rows, tags)
    if conflicts:
        rec.inc("v6ray_writer_conflicts", conflicts, tags)


def scheduler_job(job: str, *, skipped: bool = False) -> None:
    """The scheduler ran ``job``, or skipped it because its previous run is still queued."""
    name = "v6ray_scheduler_jobs_skipped" if skipped else "v6ray_scheduler_jobs_run"
    recorder().inc(name, 1, {"job": job})
