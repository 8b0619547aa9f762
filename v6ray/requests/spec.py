"""``RequestSpec``: everything v6ray knows about one request type, in one value (pure).

A request type is its spec module in ``v6ray.requests.types`` (the parameters and their
rules, the cross-checks, the result table, what it costs of IB's budgets, its CLI help,
the scheduler's built-in jobs for it) plus its handler in ``v6ray.gateway.handlers``,
which asks IB. ``v6ray.requests.registry`` collects the specs and checks, at import, that
each one is whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from v6ray.errors import InvalidRequest
from v6ray.pacing.costs import Cost
from v6ray.requests.payload import field_name, shown
from v6ray.requests.rules import ABSENT, Rule
from v6ray.storage.table_spec import TableSpec

# A cross-check sees the normalized parameters, the ones given, and the clock; it may fill
# in defaults that depend on the others and raises ``InvalidRequest`` naming the field.
CrossCheck = Callable[[dict[str, Any], Mapping[str, Any], datetime], None]


def no_cross_check(out: dict[str, Any], given: Mapping[str, Any], now: datetime) -> None:
    return None


@dataclass(frozen=True)
class RequestSpec:
    """One request type. ``name`` is its ``request_type`` value and its handler's module name."""

    name: str
    summary: str  # one line, for ``--help`` and error messages
    table: TableSpec  # the result table: schema, key columns, layout on disk
    rules: Mapping[str, Rule]
    # What one request takes from IB's budgets (``Cost``), from its normalized parameters;
    # the gateway reserves it before sending and the queue's claim checks it against room.
    cost: Callable[[Mapping[str, Any]], Cost]
    cross_check: CrossCheck = no_cross_check
    all_symbols: bool = False  # symbol "*" means every symbol (the account's positions)
    market: str = "XNYS"  # the calendar its scheduled jobs follow unless they name one
    # The scheduler's built-in jobs for this type (``v6ray.scheduler.jobs`` mappings).
    default_jobs: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def result_table(self) -> str:
        return self.table.name

    def normalize(self, parameters: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Every parameter checked and normalized, defaults filled; ``InvalidRequest``
        names the first bad one. Normalizing normalized parameters changes nothing."""
        for key in parameters:
            if key not in self.rules:
                allowed = ", ".join(self.rules) or "none"
                raise InvalidRequest(
                    field_name("parameters", key),
                    f"unknown parameter {shown(key)}; allowed: {allowed}",
                )
        out: dict[str, Any] = {}
        for key, rule in self.rules.items():
            if key in parameters:
                try:
                    out[key] = rule.check(parameters[key])
                except ValueError as exc:
                    raise InvalidRequest(f"parameters.{key}", str(exc)) from None
            elif rule.default is not ABSENT:
                out[key] = rule.default
        self.cross_check(out, parameters, now)
        return out

    def parameters_help(self) -> str:
        """``name=default`` for each parameter (``name`` alone when it has none)."""
        return ", ".join(
            key if rule.default is ABSENT else f"{key}={rule.default}"
            for key, rule in self.rules.items()
        )
