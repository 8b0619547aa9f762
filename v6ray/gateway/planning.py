"""Pure planning for handlers: option expiries and strikes, the front month (a bar request's
chunks are ``v6ray.requests.durations.request_chunks``).

Kept apart from the handlers (which talk to IB) so every choice is unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date


def _as_date(text: str) -> date | None:
    text = text.strip()[:8]
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return None


def choose_expiries(
    expirations: Iterable[str],
    today: date,
    *,
    dte: int | None = None,
    dte_min: int | None = None,
    dte_max: int | None = None,
) -> list[str]:
    """``dte``: the one expiry nearest to it (the later on a tie); else all in [min, max]."""
    dated = sorted(
        (d, text) for text in set(expirations) if (d := _as_date(text)) is not None and d >= today
    )
    if dte is not None:
        if not dated:
            return []
        def distance(item: tuple[date, str]) -> tuple[int, int]:
            return (abs((item[0] - today).days - dte), -item[0].toordinal())

        return [min(dated, key=distance)[1]]
    low = dte_min if dte_min is not None else 0
    high = dte_max if dte_max is not None else 10**6
    return [text for d, text in dated if low <= (d - today).days <= high]


def choose_strikes(strikes: Iterable[float], spot: float | None, per_side: int) -> list[float]:
    """``per_side`` strikes at or below spot and ``per_side`` above, ascending.

    Without a spot (no quote), the middle of the listed strikes stands in for it.
    """
    ordered = sorted(set(float(s) for s in strikes if s and s > 0))
    if not ordered:
        return []
    if spot is None:
        spot = ordered[len(ordered) // 2]
    below = [s for s in ordered if s <= spot][-per_side:]
    above = [s for s in ordered if s > spot][:per_side]
    return below + above


def choose_rights(rights: str) -> list[str]:
    return ["C", "P"] if rights == "both" else [rights]


def choose_future(
    months: Sequence[tuple[str, object]], today: date, contract_month: str | None
) -> object | None:
    """Pick from (lastTradeDateOrContractMonth, item) pairs: the given YYYYMM, or the front
    month (the nearest not yet expired)."""
    if contract_month:
        for text, item in months:
            if text.startswith(contract_month):
                return item
        return None
    live = []
    for text, item in months:
        expiry = _as_date(text)
        if expiry is None and len(text) >= 6 and text[:6].isdigit():
            expiry = date(int(text[:4]), int(text[4:6]), 28)  # a bare month: assume late month
        if expiry is not None and expiry >= today:
            live.append((expiry, item))
    return min(live, key=lambda pair: pair[0])[1] if live else None
