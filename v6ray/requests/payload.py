"""Untrusted values at the door (pure): a parameters payload as a plain dict, and any value
as text fit for an error message.

Whatever arrives, these raise ``InvalidRequest`` or return: a payload nested without end,
holding lone surrogates or a key twice is refused before anything recurses through it or
encodes it (json, repr, pickling, the journal).
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from v6ray import constants
from v6ray.errors import InvalidRequest

# Parameters are flat (every rule takes a scalar); nesting deeper than this is refused
# before anything recurses through it.
MAX_PARAMETERS_DEPTH = 16
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", re.ASCII)
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal parameters give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def shown(value: Any) -> str:
    """``value`` for an error message: short, one line, whatever the value (never raises)."""
    try:
        return _SHOWN.repr(value)
    except Exception:  # a __repr__ that fails
        return f"<{type(value).__name__}>"


def field_name(prefix: str, key: Any) -> str:
    """``prefix.key`` for an error's field, if ``key`` can name a field; else ``prefix``."""
    if isinstance(key, str) and _FIELD_RE.match(key):
        return f"{prefix}.{key}" if prefix else key
    return prefix


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: a key given twice is a mistake (JSON would keep the last)."""
    seen: dict[str, Any] = {}
    for key, item in pairs:
        if key in seen:
            raise InvalidRequest("parameters", f"key {shown(key)} appears more than once")
        seen[key] = item
    return seen


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion,
    and a self-containing value is simply too deep)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = list(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            children = list(item)
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_parameters_payload(value: Any) -> dict[str, Any]:
    """Accept a mapping or JSON object text; enforce the size limit; return a plain dict."""
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        if len(value) > constants.MAX_PARAMETERS_BYTES:
            raise _oversized(len(value))
        try:
            value = json.loads(value, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, InvalidRequest):
                raise
            raise InvalidRequest("parameters", f"is not valid JSON ({exc})") from None
        except RecursionError:
            raise _too_deep_error() from None
    if not isinstance(value, Mapping):
        raise InvalidRequest("parameters", f"must be a JSON object, got {type(value).__name__}")
    if _too_deep(value, MAX_PARAMETERS_DEPTH):
        raise _too_deep_error()
    try:
        text = canonical_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("parameters", f"is not JSON-serializable ({exc})") from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidRequest(
            "parameters", "holds text that is not valid Unicode (a lone surrogate)"
        ) from None
    if size > constants.MAX_PARAMETERS_BYTES:
        raise _oversized(size)
    for key in value:
        if not isinstance(key, str):
            raise InvalidRequest("parameters", f"keys must be text, got {shown(key)}")
    return dict(value)


def _too_deep_error() -> InvalidRequest:
    return InvalidRequest("parameters", f"nests deeper than {MAX_PARAMETERS_DEPTH} levels")


def _oversized(size: int) -> InvalidRequest:
    limit = constants.MAX_PARAMETERS_BYTES
    return InvalidRequest("parameters", f"payload is {size} bytes; the limit is {limit}")
