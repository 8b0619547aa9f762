"""IB error codes → what the gateway does about them (pure).

Retryable errors go back to the queue for another attempt (with its backoff); final errors
fail the request at once so an unknown symbol is not retried forever. IB's code and
message are kept in the text: "IB error 200: No security definition has been found ...".
"""

from __future__ import annotations

from v6ray.errors import IBRequestError
from v6ray.pacing import ib_limits

# Codes that a later attempt can get past: pacing, connectivity, IB-side timeouts.
RETRYABLE_CODES = frozenset(
    {
        *ib_limits.PACING_CODES,
        *ib_limits.CONNECTIVITY_LOST_CODES,
        *ib_limits.CONNECTIVITY_RESTORED_CODES,
        ib_limits.ERR_NO_HIST_QUERY,  # 366: the historical query was dropped at IB
        ib_limits.ERR_CLIENT_ID_IN_USE,
        504,  # not connected
        502,  # could not connect
        1300,  # socket port reset
        10182,  # failed to request live updates (disconnected)
    }
)
# Codes that no retry will fix: the request itself is wrong for IB.
FINAL_CODES = frozenset(
    {
        ib_limits.ERR_NO_SECURITY,  # 200
        ib_limits.ERR_NO_SUBSCRIPTION,  # 354
        321,  # error validating request (bad parameters)
        10090,  # part of requested market data is not subscribed
        10168,  # market data not subscribed (delayed disabled)
        162,  # handled below: 162 is pacing *or* "HMDS query returned no data"
    }
)

# IB's answer for a valid historical request whose window holds no bars (a weekend, a
# holiday, after hours with useRTH, before a listing): error 162 "Historical Market Data
# Service error message:HMDS query returned no data: ESM3@CME Trades". Seen at IB e.g. in
# QuantConnect/Lean#4344 (a window before the listing) and wrighter/ib-scripts#17 (a
# Sunday window of ES): an answer, not a failure, and asking again gets the same answer.
NO_DATA_TEXT = "returned no data"
HMDS_PREFIX = "Historical Market Data Service error message:"

CODE_TIMEOUT = -1  # our own code for "no answer within the timeout"
CODE_EMPTY = -2  # our own code for an empty historical answer (IB's timeout shape)


def is_no_data(code: int, message: str) -> bool:
    return code == ib_limits.ERR_HIST_PACING and NO_DATA_TEXT in message.lower()


class NoData(Exception):  # noqa: N818 - an answer, not an error: it ends the request SUCCESS
    """IB said "no data" to every part of a valid request. The gateway completes the
    request with ``result_data`` (0 rows and ``note``) instead of failing or retrying it."""

    def __init__(self, table: str, note: str) -> None:
        super().__init__(table, note)
        self.table = table
        self.note = note

    @property
    def result_data(self) -> dict[str, object]:
        return {"table": self.table, "rows": 0, "delta_version": None, "note": self.note}


def no_data_note(ib_messages: list[str]) -> str:
    """The note of a request IB had no bars for, quoting IB's own words when it gave any."""
    said = "; ".join(dict.fromkeys(m.removeprefix(HMDS_PREFIX).strip() for m in ib_messages))
    return "no data: IB has no bars in the requested window" + (f" (IB: {said})" if said else "")


def is_retryable(code: int, message: str = "") -> bool:
    if code == ib_limits.ERR_HIST_PACING:
        # 162 carries both pacing violations (retry) and "no data" style answers (final).
        text = message.lower()
        if NO_DATA_TEXT in text:
            return False
        return "pacing" in text or "violation" in text or not text
    if code in RETRYABLE_CODES or code in (CODE_TIMEOUT, CODE_EMPTY):
        return True
    if code in FINAL_CODES:
        return False
    # Unknown codes: IB's 2xx/3xx/4xx are about the request; 1xxx/5xx are about the link.
    return code >= 500


def ib_error(code: int, message: str) -> IBRequestError:
    return IBRequestError(code, message, retryable=is_retryable(code, message))


def timeout_error(what: str, seconds: float) -> IBRequestError:
    return IBRequestError(CODE_TIMEOUT, f"{what}: no answer within {seconds:g} s", retryable=True)
