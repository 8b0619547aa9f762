"""Handler registry: the module named after a request type defines its ``HANDLER``.

A request type is its spec (``v6ray.requests.types.<type>``: parameters, result table, cost)
plus its handler here (``HANDLER`` with ``request_type``, ``table`` and ``async run(ctx) ->
list[dict]``, its rows); neither the queue nor the gateway's loop changes. The handlers are
checked against the specs when this package is imported (the gateway's start): a type
without a handler, a handler without a type, or one writing another table fails then.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from v6ray.errors import IncompleteRequestType
from v6ray.gateway.handlers.base import Handler, HandlerContext, Rows
from v6ray.requests.registry import SPECS

__all__ = ["Handler", "HandlerContext", "Rows", "get_handler", "handlers"]


@cache
def handlers() -> dict[str, Handler]:
    found: dict[str, Handler] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        handler = getattr(module, "HANDLER", None)
        if handler is not None:
            found[handler.request_type] = handler
    return _matching_specs(found)


def _matching_specs(found: dict[str, Handler]) -> dict[str, Handler]:
    for rtype, spec in SPECS.items():
        handler = found.get(rtype.value)
        if handler is None:
            raise IncompleteRequestType(rtype.value, f"no HANDLER in {__name__}.{rtype.value}")
        if handler.table != spec.result_table:
            raise IncompleteRequestType(
                rtype.value, f"its handler writes {handler.table!r}, its spec {spec.result_table!r}"
            )
    for name in set(found) - {rtype.value for rtype in SPECS}:
        raise IncompleteRequestType(name, "a handler without a spec in v6ray.requests.types")
    return found


def get_handler(request_type: str) -> Handler:
    try:
        return handlers()[request_type]
    except KeyError:
        raise KeyError(f"no handler for request type {request_type!r}") from None


handlers()  # checked now: a half-added request type stops the gateway's import, not a request
