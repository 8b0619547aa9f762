"""The request model: what a request is, its statuses, and validation at submit time (pure).

``new_request`` is the single door into the queue: anything it accepts is well-formed for
its handler, anything else raises ``InvalidRequest`` naming the field, before anything is
queued. What each request type accepts is its spec's (``v6ray.requests.types``), the
payload's own checks (JSON, nesting, Unicode) are ``v6ray.requests.payload``'s.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.pacing.costs import NO_COST, Cost
from v6ray.requests.payload import canonical_json, field_name, parse_parameters_payload, shown
from v6ray.requests.registry import SPECS, RequestType, spec_for
from v6ray.storage.schemas import TABLES


class Priority(IntEnum):
    """Lower value is served first."""

    IMMEDIATE = 1  # a person is waiting for it
    NORMAL = 2  # scheduled collection
    BACKGROUND = 3  # backfills; served when nothing else waits (but never starved)


class Status(StrEnum):
    """Life of a request: PENDING → PROCESSING → SUCCESS | FAILED (or PENDING → CANCELLED)."""

    PENDING = "PENDING"  # queued, claimable once ``not_before`` has passed
    PROCESSING = "PROCESSING"  # leased to a gateway; the lease expiring makes it PENDING again
    SUCCESS = "SUCCESS"  # rows committed; ``result_data`` says where
    FAILED = "FAILED"  # final error, or retries exhausted (dead letter); see ``error_message``
    CANCELLED = "CANCELLED"  # withdrawn while still PENDING

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED})

# The table each request type writes; ``result_table`` must name it.
RESULT_TABLES: dict[RequestType, str] = {rtype: spec.result_table for rtype, spec in SPECS.items()}

SUBMISSION_FIELDS = ("request_type", "symbol", "priority", "parameters", "result_table")
# One submit_many call takes at most this many items: one call is one actor message and
# one stretch of the queue's event loop (~30 us of validation per item).
MAX_SUBMIT_MANY = 10_000
ALL_SYMBOLS = "*"
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]*$", re.ASCII)


@dataclass(frozen=True, slots=True, eq=True)
class IBRequest:
    """One request and its current state (one row of ``ib_requests``). Treat as immutable."""

    request_id: str
    request_type: RequestType
    symbol: str
    priority: Priority
    status: Status
    parameters: dict[str, Any]
    result_table: str
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    error_message: str | None = None
    result_data: dict[str, Any] | None = None
    # Scheduling state the queue keeps beside the contract columns:
    not_before: datetime | None = None  # retry backoff: not claimable before this instant
    lease_owner: str | None = None  # the worker holding the PROCESSING lease
    lease_expires_at: datetime | None = None  # PENDING again after this instant
    dedup_key: str = field(default="", compare=False)
    # What it takes of IB's budgets (its type's ``cost`` of its parameters), computed once
    # when the request is made or loaded; the queue's claim weighs it as plain numbers.
    cost: Cost = field(default=NO_COST, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def parameters_json(self) -> str:
        return canonical_json(self.parameters)

    def with_changes(self, **changes: Any) -> IBRequest:
        return replace(self, **changes)

    def as_submission(self) -> dict[str, Any]:
        """The ``submit_many`` item that asks for this request again, in plain values only
        (what a client sends after checking a submission itself)."""
        return {
            "request_type": self.request_type.value,
            "symbol": self.symbol,
            "priority": int(self.priority),
            "parameters": self.parameters,
            "result_table": self.result_table,
        }


def dedup_key(request_type: RequestType, symbol: str, parameters: Mapping[str, Any]) -> str:
    """Requests with the same key ask IB the same question and may share one IB call."""
    return f"{request_type.value}|{symbol}|{canonical_json(parameters)}"


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- validation


def _folded(value: str) -> str | None:
    """``value`` stripped and ready for case-insensitive matching, or None when it is not
    ASCII: Unicode case mapping turns other text into ASCII ("ﬀ".upper() == "FF",
    "ı".upper() == "I", the Kelvin sign lowers to "k"), so it could pass for a name."""
    return value.strip() if value.isascii() else None


def parse_request_type(value: Any) -> RequestType:
    if isinstance(value, RequestType):
        return value
    if isinstance(value, str) and (text := _folded(value)) is not None:
        try:
            return RequestType(text.lower())
        except ValueError:
            pass
    known = ", ".join(t.value for t in RequestType)
    raise InvalidRequest("request_type", f"{shown(value)} is not one of {known}")


def parse_priority(value: Any) -> Priority:
    if isinstance(value, Priority):
        return value
    text = _folded(value) if isinstance(value, str) else None
    if text is not None and text.upper() in Priority.__members__:
        return Priority[text.upper()]
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3:
        return Priority(value)
    raise InvalidRequest(
        "priority", f"{shown(value)} is not 1 (IMMEDIATE), 2 (NORMAL) or 3 (BACKGROUND)"
    )


def parse_symbol(value: Any, request_type: RequestType) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("symbol", f"must be text, got {type(value).__name__}")
    if (text := _folded(value)) is None:
        raise InvalidRequest(
            "symbol", f"{shown(value)} is not ASCII; IB symbols are ASCII letters and digits"
        )
    symbol = text.upper()
    if not symbol:
        raise InvalidRequest("symbol", "is empty")
    if len(symbol) > constants.MAX_SYMBOL_LENGTH:
        raise InvalidRequest("symbol", f"longer than {constants.MAX_SYMBOL_LENGTH} characters")
    if symbol == ALL_SYMBOLS:
        if spec_for(request_type).all_symbols:
            return symbol
        takers = ", ".join(t.value for t, spec in SPECS.items() if spec.all_symbols)
        raise InvalidRequest("symbol", f"'*' (all) is only meaningful for {takers}")
    if not _SYMBOL_RE.match(symbol):
        raise InvalidRequest(
            "symbol", f"{shown(value)} may hold only letters, digits, '.', '-', '/' and spaces"
        )
    return symbol


def parse_result_table(value: Any, request_type: RequestType) -> str:
    expected = RESULT_TABLES[request_type]
    if value is None:
        return expected
    if not isinstance(value, str) or value not in TABLES:
        raise InvalidRequest(
            "result_table",
            f"{shown(value)} is not a registered table ({', '.join(sorted(TABLES))})",
        )
    if value != expected:
        raise InvalidRequest(
            "result_table", f"{request_type.value} results are written to {expected!r}"
        )
    return value


def new_request(
    request_type: Any,
    symbol: Any,
    *,
    priority: Any = Priority.NORMAL,
    parameters: Any = None,
    result_table: Any = None,
    now: datetime | None = None,
    request_id: str | None = None,
) -> IBRequest:
    """Validate a submission and build its PENDING request; raises ``InvalidRequest`` (and
    nothing else, whatever the input). ``now`` is the creation time and the clock that
    time-dependent rules (``end`` not in the future) are checked against."""
    stamp = now or utc_now()
    try:
        rtype, sym, prio, params, table = _validated(
            request_type, symbol, priority, parameters, result_table, stamp
        )
    except InvalidRequest:
        raise
    except Exception as exc:  # a rule that missed a kind of input: still the caller's input
        raise InvalidRequest(
            "request", f"could not be checked ({type(exc).__name__}: {shown(exc)})"
        ) from None
    return IBRequest(
        request_id=request_id or str(uuid.uuid4()),
        request_type=rtype,
        symbol=sym,
        priority=prio,
        status=Status.PENDING,
        parameters=params,
        result_table=table,
        created_at=stamp,
        updated_at=stamp,
        dedup_key=dedup_key(rtype, sym, params),
        cost=spec_for(rtype).cost(params),
    )


def _validated(
    request_type: Any, symbol: Any, priority: Any, parameters: Any, result_table: Any,
    now: datetime,
) -> tuple[RequestType, str, Priority, dict[str, Any], str]:
    rtype = parse_request_type(request_type)
    sym = parse_symbol(symbol, rtype)
    prio = parse_priority(priority)
    params = spec_for(rtype).normalize(parse_parameters_payload(parameters), now)
    table = parse_result_table(result_table, rtype)
    return rtype, sym, prio, params, table


def check_items(items: Any) -> None:
    """A ``submit_many`` list: a list or tuple of at most ``MAX_SUBMIT_MANY`` items."""
    if not isinstance(items, list | tuple):
        raise InvalidRequest("items", f"must be a list of mappings, got {type(items).__name__}")
    if len(items) > MAX_SUBMIT_MANY:
        raise InvalidRequest(
            "items", f"{len(items)} items; one call takes at most {MAX_SUBMIT_MANY} (split it)"
        )


def requests_from_submissions(
    items: Any, *, stamp: Callable[[], datetime] = utc_now
) -> list[IBRequest]:
    """Every ``submit_many`` item as a request, or ``InvalidRequest`` naming the first bad
    one (``items[3].symbol``): all or nothing. ``stamp`` gives each its creation time."""
    check_items(items)
    requests = []
    for index, item in enumerate(items):
        try:
            requests.append(request_from_submission(item, now=stamp()))
        except InvalidRequest as exc:
            raise InvalidRequest(f"items[{index}].{exc.field}", exc.reason) from None
    return requests


def request_from_submission(item: Any, *, now: datetime | None = None) -> IBRequest:
    """Build a request from one ``submit_many`` item (a mapping of the submission fields)."""
    if not isinstance(item, Mapping):
        raise InvalidRequest("request", f"each item must be a mapping, got {type(item).__name__}")
    unknown = [k for k in item if k not in SUBMISSION_FIELDS]
    if unknown:
        raise InvalidRequest(
            field_name("", unknown[0]) or "request",
            f"unknown field {shown(unknown[0])}; allowed: {', '.join(SUBMISSION_FIELDS)}",
        )
    if "request_type" not in item:
        raise InvalidRequest("request_type", "is required")
    if "symbol" not in item:
        raise InvalidRequest("symbol", "is required")
    return new_request(
        item["request_type"],
        item["symbol"],
        priority=item.get("priority", Priority.NORMAL),
        parameters=item.get("parameters"),
        result_table=item.get("result_table"),
        now=now,
    )
