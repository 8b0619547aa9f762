"""The queue's journaled changes → one log line per state change, and the queue's metrics.

Every change of a request passes through the queue's journal, so this is the one place
that sees them all. ``RequestObserver.journaled`` is called with each batch of changes
and the future that resolves once they are durable:

* a log line per state change (a lease renewal or a priority raise is not one), with
  request id, type, symbol, attempt, priority and the IB error code of a failure;
* counters: requests submitted (by type, priority), finished (by type, final status),
  failed attempts (by type, IB error code);
* histograms: submit → durable, enqueue → final (by type and status).

Pure apart from the recorder and the logger it is given; tests pass a MemoryRecorder.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from v6ray.observability.logs import LineBatch, install_masking
from v6ray.observability.metrics import Recorder, recorder
from v6ray.requests.model import IBRequest, Priority, Status

log = logging.getLogger("v6ray.requests")

# "IB error 162: Historical Market Data Service error message: ..." (errors.IBRequestError).
_IB_CODE = re.compile(r"^IB error (-?\d+)\b")
NO_CODE = "none"


def ib_error_code(message: str | None) -> str:
    """IB's error code in a failure message, or "none" (a v6ray-side error)."""
    match = _IB_CODE.match(message or "")
    return match.group(1) if match else NO_CODE


def _short(text: str, width: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def transition(request: IBRequest, previous: Status | None) -> tuple[str, dict[str, Any]]:
    """The log line of one state change (its message), and its fields for JSON lines."""
    before = previous.value if previous is not None else "NEW" if _is_new(request) else "?"
    fields: dict[str, Any] = {
        "request_id": request.request_id, "request_type": request.request_type.value,
        "symbol": request.symbol, "status": request.status.value, "previous": before,
        "attempt": request.attempts, "priority": int(request.priority),
    }
    line = (
        f"request {request.request_id} {fields['request_type']} {request.symbol} "
        f"{before}->{fields['status']} attempt={request.attempts} "
        f"priority={fields['priority']}"
    )
    if request.error_message and request.status in (Status.PENDING, Status.FAILED):
        fields["code"] = ib_error_code(request.error_message)
        fields["error"] = _short(request.error_message)
        line += f" code={fields['code']} error={fields['error']!r}"
    return line, fields


def _is_new(request: IBRequest) -> bool:
    """Just submitted: the only change whose created_at and updated_at are the same."""
    return request.status is Status.PENDING and request.created_at == request.updated_at


class RequestObserver:
    def __init__(
        self, to: Recorder | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        install_masking()  # this process logs request lines: no account id in full
        self._lines = LineBatch(log, "requests.py", _journaled_line)
        self._to = to
        self._clock = clock
        # (status, attempts) of every live request seen, to tell changes from renewals.
        self._seen: dict[str, tuple[Status, int]] = {}

    @property
    def recorder(self) -> Recorder:
        return self._to if self._to is not None else recorder()

    def journaled(self, changes: Iterable[IBRequest], durable: Any = None) -> None:
        """One batch of changes, handed to the journal; ``durable`` resolves once on disk."""
        try:
            self._journaled(changes, durable)
        except Exception:  # watching must never break the queue's own work
            log.exception("recording request changes failed")

    def _journaled(self, changes: Iterable[IBRequest], durable: Any) -> None:
        rec = self.recorder
        logging_on = self._lines.enabled()
        lines: list[tuple[str, dict[str, Any]]] = []
        submitted: Counter[tuple[str, str]] = Counter()
        finished: Counter[tuple[str, str]] = Counter()
        failures: Counter[tuple[str, str]] = Counter()
        new_created: list[float] = []
        for request in changes:
            rid = request.request_id
            previous = self._seen.get(rid)
            status, attempts = request.status, request.attempts
            if previous is not None and previous[0] is status:
                self._seen[rid] = (status, attempts)  # renewal, priority raise: no change
                continue
            if request.is_final:
                self._seen.pop(rid, None)
            else:
                self._seen[rid] = (status, attempts)
            rtype = request.request_type.value
            if previous is None and _is_new(request):
                submitted[(rtype, str(int(request.priority)))] += 1
                new_created.append(request.created_at.timestamp())
            if request.is_final:
                finished[(rtype, status.value)] += 1
                rec.observe(
                    "v6ray_request_latency_seconds",
                    max(0.0, (request.updated_at - request.created_at).total_seconds()),
                    {"request_type": rtype, "status": status.value},
                )
            released = previous is not None and attempts < previous[1]
            if request.error_message and not released and (
                status is Status.FAILED
                or (status is Status.PENDING and previous is not None
                    and previous[0] is Status.PROCESSING)
            ):
                failures[(rtype, ib_error_code(request.error_message))] += 1
            if logging_on:
                lines.append(transition(request, previous[0] if previous else None))
        self._lines.write(lines)
        for (rtype, priority), n in submitted.items():
            rec.inc("v6ray_requests_submitted", n, {"request_type": rtype, "priority": priority})
        for (rtype, status_name), n in finished.items():
            rec.inc("v6ray_requests_finished", n, {"request_type": rtype, "status": status_name})
        for (rtype, code), n in failures.items():
            rec.inc("v6ray_request_failures", n, {"request_type": rtype, "code": code})
        if new_created and durable is not None:
            durable.add_done_callback(lambda f: self._durable(f, new_created))

    def _durable(self, future: Any, created: list[float]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        now = self._clock()
        rec = self.recorder
        for stamp in created:
            rec.observe("v6ray_submit_durable_seconds", max(0.0, now - stamp))

    def publish(self, core: Any) -> None:
        """The queue's gauges from its core: depth by status and priority (every pair,
        zeros too, so a drained level shows 0), in flight, age of the oldest PENDING."""
        depth = {(s, p): 0 for s in Status for p in Priority}
        for (status, _rtype, priority), n in core.counts.items():
            depth[(status, priority)] += n
        rec = self.recorder
        for (status, priority), n in depth.items():
            rec.set("v6ray_queue_depth", n,
                    {"status": status.value, "priority": str(int(priority))})
        rec.set("v6ray_queue_in_flight", core.in_flight)
        oldest = core.oldest_pending_created()
        rec.set("v6ray_queue_oldest_pending_age_seconds",
                0.0 if oldest is None else max(0.0, self._clock() - oldest))


_journaled_line = RequestObserver._journaled.__code__.co_firstlineno
