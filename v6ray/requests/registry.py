"""The request types v6ray knows: one spec module each in ``v6ray.requests.types``, found
and checked at import, so a half-added type fails when v6ray starts, not at run time.

``RequestType`` (a ``str`` enum) is built from the specs: adding a request type is its spec
module, its handler module (``v6ray/gateway/handlers/<type>.py``) and their tests; no list
elsewhere names the types. The checks here need no IB client (only the gateway imports
``ib_async``): the handler's module must exist; the gateway's handler registry checks, when
the gateway imports it, that each handler matches its spec.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from v6ray import constants
from v6ray.errors import IncompleteRequestType
from v6ray.pacing.costs import Cost
from v6ray.requests import types as _types_package
from v6ray.requests.rules import ABSENT, Rule
from v6ray.requests.spec import RequestSpec

# Tables that are not a request type's results: the queue's journal and derived statistics.
_RESERVED_TABLES = frozenset(
    {constants.REQUESTS_TABLE, constants.REQUESTS_ARCHIVE_TABLE, constants.DERIVED_STATISTICS_TABLE}
)
HANDLERS_DIR = Path(__file__).resolve().parent.parent / "gateway" / "handlers"


def _discover() -> list[tuple[str, RequestSpec]]:
    """(module name, its ``SPEC``) of every module in ``v6ray.requests.types``, by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(_types_package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{_types_package.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, RequestSpec):
            raise IncompleteRequestType(info.name, f"{module.__name__} defines no SPEC")
        found.append((info.name, spec))
    return found


def check_spec(spec: RequestSpec, module_name: str | None = None) -> None:
    """Raise ``IncompleteRequestType`` naming what ``spec`` lacks."""
    name = spec.name
    if module_name is not None and name != module_name:
        raise IncompleteRequestType(name, f"its module is named {module_name!r}")
    if not name.isidentifier() or name != name.lower():
        raise IncompleteRequestType(name, "a type name is a lower-case identifier")
    if spec.result_table in _RESERVED_TABLES:
        raise IncompleteRequestType(name, f"{spec.result_table!r} is not a result table")
    missing_keys = set(spec.table.key_columns) - set(spec.table.schema.names)
    if missing_keys:
        raise IncompleteRequestType(name, f"key columns not in its table: {sorted(missing_keys)}")
    if not (HANDLERS_DIR / f"{name}.py").is_file():
        raise IncompleteRequestType(name, f"no handler module {HANDLERS_DIR / name}.py")
    for key, rule in spec.rules.items():
        if rule.default is not ABSENT and not _passes(rule, rule.default):
            raise IncompleteRequestType(name, f"default of {key!r} fails its own rule")
    if not isinstance(spec.cost({}), Cost):
        raise IncompleteRequestType(name, "its cost is not a Cost")
    for job in spec.default_jobs:
        if job.get("type") != name:
            raise IncompleteRequestType(name, f"default job {job.get('name')!r} is of another type")


def _passes(rule: Rule, value: Any) -> bool:
    """``value`` is accepted by ``rule`` and is already in its normal form."""
    try:
        return rule.check(value) == value
    except ValueError:
        return False


def _checked(found: list[tuple[str, RequestSpec]]) -> list[RequestSpec]:
    """The specs, each checked against the name of the module that defines it."""
    tables: dict[str, str] = {}
    for module_name, spec in found:
        check_spec(spec, module_name)
        if spec.result_table in tables:
            raise IncompleteRequestType(
                spec.name, f"table {spec.result_table!r} is also {tables[spec.result_table]}'s"
            )
        tables[spec.result_table] = spec.name
    return [spec for _, spec in found]


_SPECS = _checked(_discover())

# ``module``/``qualname`` let pickle (Ray ships requests between processes) find the class.
RequestType = StrEnum(  # type: ignore[misc]
    "RequestType",
    [(spec.name.upper(), spec.name) for spec in _SPECS],
    module=__name__,
    qualname="RequestType",
)
RequestType.__doc__ = "What IB is asked for; each type has one spec, one handler, one table."

SPECS: Mapping[RequestType, RequestSpec] = {RequestType(spec.name): spec for spec in _SPECS}


def spec_for(request_type: RequestType | str) -> RequestSpec:
    """The spec of a request type (an enum member or its value)."""
    return SPECS[RequestType(request_type)]
