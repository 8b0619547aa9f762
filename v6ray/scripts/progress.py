"""What the data-loading scripts share: the ``Summary`` they return, a progress bar on
stderr, waiting for many requests, and the CLI plumbing of ``main(argv)``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from v6ray.errors import RequestTimeout, V6RayError
from v6ray.requests.model import MAX_SUBMIT_MANY, IBRequest, Status

DEFAULT_TIMEOUT = 3600.0  # a long backfill at IB's pace takes a while; callers shorten it
_BAR_WIDTH = 30


@dataclass
class Summary:
    """Outcome of one script run; ``render()`` is what the CLI prints."""

    title: str
    requests: int = 0  # requests submitted (deduplicated ones included)
    rows: int = 0  # rows written to the result tables
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (id, symbol, reason)
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        head = (
            f"{self.title}: {self.requests} request{'s' * (self.requests != 1)}, "
            f"{self.rows:,} row{'s' * (self.rows != 1)}, "
            f"{len(self.failures)} failure{'s' * (len(self.failures) != 1)} "
            f"in {self.elapsed:.1f} s"
        )
        lines = [head, *(f"  {note}" for note in self.notes)]
        if self.failures:
            lines.append("failures:")
            lines.extend(f"  {rid}  {symbol}: {reason}" for rid, symbol, reason in self.failures)
        return "\n".join(lines)


class Progress:
    """A one-line progress bar on ``stream`` (stderr), drawn only when enabled.

    ``enabled=None`` means "when ``stream`` is a terminal", so pipes and CI logs stay clean.
    """

    def __init__(
        self, total: int, label: str, *, enabled: bool | None = None, stream: TextIO | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()

    def advance(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        filled = _BAR_WIDTH * self.done // self.total if self.total else _BAR_WIDTH
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        counts = f"{self.done}/{self.total}{failed}"
        self.stream.write(f"\r{self.label} [{bar}] {counts} {minutes:02d}:{seconds:02d}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def request_rows(request: IBRequest) -> int:
    """Rows a successful request wrote, from its ``result_data`` (0 when it does not say)."""
    data = request.result_data or {}
    rows = data.get("rows", 0)
    if isinstance(rows, dict):  # {table: rows} when a request wrote several tables
        rows = sum(v for v in rows.values() if isinstance(v, int))
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else 0


def wait_for_requests(
    client: Any,
    submitted: Sequence[tuple[str, str]],
    summary: Summary,
    *,
    timeout: float,
    progress: Progress,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, IBRequest]:
    """Wait for (request_id, symbol) pairs to finish, within ``timeout`` seconds overall.

    Adds rows and failures to ``summary`` and advances ``progress``. Requests are awaited in
    submission order, roughly the order the queue serves them. Duplicate ids (the queue
    coalesced identical requests) are awaited and counted once.
    """
    deadline = clock() + timeout
    finals: dict[str, IBRequest] = {}
    for request_id, symbol in dict(submitted).items():
        remaining = deadline - clock()
        try:
            if remaining <= 0:
                raise RequestTimeout(request_id, timeout)
            request = client.wait(request_id, timeout=remaining)
        except RequestTimeout:
            summary.failures.append(
                (request_id, symbol, _timeout_reason(client, request_id, timeout))
            )
            progress.advance(failed=True)
            continue
        finals[request_id] = request
        if request.status is Status.SUCCESS:
            summary.rows += request_rows(request)
            progress.advance()
        else:
            reason = request.error_message or str(request.status)
            summary.failures.append((request_id, symbol, f"{request.status}: {reason}"))
            progress.advance(failed=True)
    return finals


def submit_and_wait(
    client: Any,
    items: Sequence[dict[str, Any]],
    summary: Summary,
    *,
    label: str,
    timeout: float,
    progress: bool | None,
) -> dict[str, IBRequest]:
    """Submit ``items`` in durable batches (one per ``MAX_SUBMIT_MANY``: a long backfill
    can plan more), then wait for them behind a progress bar."""
    ids = [rid for start in range(0, len(items), MAX_SUBMIT_MANY)
           for rid in client.submit_many(list(items[start:start + MAX_SUBMIT_MANY]))]
    bar = Progress(len(set(ids)), label, enabled=progress)
    bar.draw()
    try:
        return wait_for_requests(
            client,
            [(rid, item["symbol"]) for rid, item in zip(ids, items, strict=True)],
            summary,
            timeout=timeout,
            progress=bar,
        )
    finally:
        bar.close()


def _timeout_reason(client: Any, request_id: str, timeout: float) -> str:
    try:
        request = client.get(request_id)
    except V6RayError:
        request = None
    status = f" (still {request.status})" if request is not None else ""
    return f"not finished within {timeout:g} s{status}"


def run_main(action: Callable[[], Summary]) -> int:
    """Run a script body for ``main(argv)``: print the summary; 0 only if nothing failed;
    a user error is one line on stderr, not a traceback."""
    try:
        summary = action()
    except V6RayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; submitted requests stay queued", file=sys.stderr)
        return 130
    print(summary.render())
    return 0 if summary.ok else 1
