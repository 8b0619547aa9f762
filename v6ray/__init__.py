"""v6ray: one durable priority queue and one IB connection for every Interactive Brokers request.

``connect``, ``Client`` and ``read_table`` are imported on first use: ``import v6ray`` stays
light (no Ray, no Delta) for code that only needs the model and the errors.
"""

from __future__ import annotations

from typing import Any

from v6ray.errors import (
    GatewayUnavailable,
    IBRequestError,
    InvalidRequest,
    NoTables,
    NotRunning,
    RequestTimeout,
    StorageError,
    UnknownRequest,
    UnknownTable,
    V6RayError,
)
from v6ray.requests.model import IBRequest, Priority, RequestType, Status

__all__ = [
    "Client",
    "GatewayUnavailable",
    "IBRequest",
    "IBRequestError",
    "InvalidRequest",
    "NoTables",
    "NotRunning",
    "Priority",
    "RequestTimeout",
    "RequestType",
    "Status",
    "StorageError",
    "UnknownRequest",
    "UnknownTable",
    "V6RayError",
    "connect",
    "read_table",
]

_LAZY = {
    "connect": "v6ray.client.api",
    "Client": "v6ray.client.api",
    "read_table": "v6ray.storage.reader",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'v6ray' has no attribute {name!r}")
