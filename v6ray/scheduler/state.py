"""The scheduler's memory across restarts: last run per job, written atomically to a JSON file.

The file is small and rewritten whole after every run (temp file, fsync, ``os.replace``), so
a crash leaves either the old or the new state, never half of one. An unreadable file is
set aside (``.corrupt``) and the scheduler starts fresh rather than refusing to start.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

STATE_VERSION = 1
STATE_SUBDIR = "_v6ray"
STATE_FILE = "scheduler_state.json"


@dataclass(frozen=True)
class JobState:
    last_run: datetime | None = None  # when the job last ran (submitted its requests)
    last_slot: datetime | None = None  # the scheduled instant of a daily job's last run
    last_request_ids: tuple[str, ...] = ()
    runs: int = 0
    skipped_pending: int = 0  # runs skipped because the previous run was still in the queue
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "last_run": _stamp(self.last_run),
            "last_slot": _stamp(self.last_slot),
            "last_request_ids": list(self.last_request_ids),
            "runs": self.runs,
            "skipped_pending": self.skipped_pending,
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobState:
        return cls(
            last_run=_parse(data.get("last_run")),
            last_slot=_parse(data.get("last_slot")),
            last_request_ids=tuple(str(i) for i in data.get("last_request_ids") or ()),
            runs=int(data.get("runs") or 0),
            skipped_pending=int(data.get("skipped_pending") or 0),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True)
class SchedulerState:
    jobs: dict[str, JobState] = field(default_factory=dict)
    running: bool = False  # start() was called and stop() was not: resume after a restart

    def job(self, name: str) -> JobState:
        return self.jobs.get(name, JobState())

    def with_job(self, name: str, job_state: JobState) -> SchedulerState:
        return replace(self, jobs={**self.jobs, name: job_state})

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "running": self.running,
            "jobs": {name: js.to_json() for name, js in sorted(self.jobs.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchedulerState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported scheduler state version {data.get('version')!r}")
        jobs = {str(k): JobState.from_json(v) for k, v in (data.get("jobs") or {}).items()}
        return cls(jobs=jobs, running=bool(data.get("running")))


def state_path(data_dir: str | os.PathLike[str]) -> str:
    """``<data_dir>/_v6ray/<file>``; on this machine for an object-store data root
    (``location.local_state_dir``)."""
    from v6ray.storage.location import local_state_dir

    return os.path.join(local_state_dir(data_dir), STATE_FILE)


def save_state(path: str, state: SchedulerState) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same folder + os.replace)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".scheduler_state.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state.to_json(), handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def load_state(path: str) -> SchedulerState:
    """The saved state; a fresh one when there is none or it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return SchedulerState.from_json(json.load(handle))
    except FileNotFoundError:
        return SchedulerState()
    except (ValueError, TypeError, AttributeError):
        # Keep the evidence, start fresh: a lost schedule is better than a dead scheduler.
        os.replace(path, path + ".corrupt")
        return SchedulerState()


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    stamp = datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r} in scheduler state")
    return stamp
