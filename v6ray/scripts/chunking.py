"""load-history's requests: ``v6ray.bar_chunks.plan`` with each symbol's exchange calendar.

``chunk_range(end, duration, bar_size, use_rth=, sec_type=)`` returns the requests as
``(end ISO UTC, duration)``, newest first. The exchange calendar (XNYS, or CMES for
futures) knows weekends, holidays and early closes, so no request asks for a window
without trading; the gateway, which must not load a calendar per request, counts weekdays.
"""

from __future__ import annotations

from datetime import UTC, datetime

from v6ray import bar_chunks, markets


def iso_utc(stamp: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00``, the form ``rules.instant`` gives ``end``."""
    if stamp.tzinfo is None:
        raise ValueError("chunk ends must be timezone-aware")
    return stamp.astimezone(UTC).replace(microsecond=0).isoformat()


def chunk_range(
    end: datetime, duration: str, bar_size: str, *, use_rth: bool = True, sec_type: str = "STK"
) -> list[tuple[str, str]]:
    """[(chunk end ISO UTC, chunk duration)] newest first; see ``bar_chunks.plan``."""
    chunks = bar_chunks.plan(
        end, duration, bar_size, use_rth=use_rth, kind=markets.session_kind(sec_type)
    )
    return [(iso_utc(chunk.end), chunk.duration) for chunk in chunks]
