"""Handler registry: every module in this package that defines ``HANDLER`` is one request type.

Adding a request type = one module here (``HANDLER`` with ``request_type``, ``table`` and
``async run(ctx) -> list[dict]``, its rows) plus its table schema in ``v6ray.storage.schemas``;
neither the queue nor the gateway's loop changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from v6ray.gateway.handlers.base import Handler, HandlerContext, Rows

__all__ = ["Handler", "HandlerContext", "Rows", "get_handler", "handlers"]


@cache
def handlers() -> dict[str, Handler]:
    found: dict[str, Handler] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        handler = getattr(module, "HANDLER", None)
        if handler is not None:
            found[handler.request_type] = handler
    return found


def get_handler(request_type: str) -> Handler:
    try:
        return handlers()[request_type]
    except KeyError:
        raise KeyError(f"no handler for request type {request_type!r}") from None
