"""Reading command-line values: flag types shared by the ``v6ray`` command and the scripts'
own ``main`` (``python -m v6ray.scripts.<name>``), so a flag both offer checks its value
alike, and ``--param KEY=VALUE`` pairs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from v6ray.errors import UsageError


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["dte=45", "use_rth=false", "bar_size=1 hour"]`` → ``{"dte": 45, ...}``.

    A value is JSON when it parses as JSON (numbers, true/false, null, lists, objects),
    otherwise it is kept as text, so ``duration=5 D`` needs no quoting of its own.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {item!r}: expected KEY=VALUE, e.g. --param dte=45")
        if key in params:
            raise UsageError(f"--param {key!r} given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params
