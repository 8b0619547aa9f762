"""TWS socket protocol: framing, field encoding, message ids.

Every message after the handshake is a 4-byte big-endian length followed by
NUL-terminated text fields. The client opens with ``API\\0`` plus a framed
``v<min>..<max>`` version range; the server answers with a framed
``<serverVersion>\\0<connectionTime>\\0``. Field layouts follow ib_async's decoder
for ``SERVER_VERSION`` (no version field on contract details, an
``advancedOrderRejectJson`` field on errors, ...).
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

# ib_async 2.x speaks client versions 157..178; 178 is the newest layout its decoder knows.
SERVER_VERSION = 178
API_PREFIX = b"API\0"
_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a client sending more than this is broken, not busy

# --- messages the client sends (outgoing from TWS's point of view: "OUT") ---------------
REQ_MKT_DATA = 1
CANCEL_MKT_DATA = 2
PLACE_ORDER = 3
REQ_OPEN_ORDERS = 5
REQ_ACCT_DATA = 6
REQ_EXECUTIONS = 7
REQ_IDS = 8
REQ_CONTRACT_DATA = 9
REQ_AUTO_OPEN_ORDERS = 15
REQ_ALL_OPEN_ORDERS = 16
REQ_MANAGED_ACCTS = 17
REQ_HISTORICAL_DATA = 20
CANCEL_HISTORICAL_DATA = 25
REQ_CURRENT_TIME = 49
REQ_MARKET_DATA_TYPE = 59
REQ_POSITIONS = 61
CANCEL_POSITIONS = 64
START_API = 71
REQ_ACCOUNT_UPDATES_MULTI = 76
CANCEL_ACCOUNT_UPDATES_MULTI = 77
REQ_SEC_DEF_OPT_PARAMS = 78
REQ_MATCHING_SYMBOLS = 81
REQ_HEAD_TIMESTAMP = 87
CANCEL_HEAD_TIMESTAMP = 90
REQ_COMPLETED_ORDERS = 99

REQUEST_NAMES: dict[int, str] = {
    REQ_MKT_DATA: "reqMktData",
    CANCEL_MKT_DATA: "cancelMktData",
    PLACE_ORDER: "placeOrder",
    REQ_OPEN_ORDERS: "reqOpenOrders",
    REQ_ACCT_DATA: "reqAccountUpdates",
    REQ_EXECUTIONS: "reqExecutions",
    REQ_IDS: "reqIds",
    REQ_CONTRACT_DATA: "reqContractDetails",
    REQ_AUTO_OPEN_ORDERS: "reqAutoOpenOrders",
    REQ_ALL_OPEN_ORDERS: "reqAllOpenOrders",
    REQ_MANAGED_ACCTS: "reqManagedAccts",
    REQ_HISTORICAL_DATA: "reqHistoricalData",
    CANCEL_HISTORICAL_DATA: "cancelHistoricalData",
    REQ_CURRENT_TIME: "reqCurrentTime",
    REQ_MARKET_DATA_TYPE: "reqMarketDataType",
    REQ_POSITIONS: "reqPositions",
    CANCEL_POSITIONS: "cancelPositions",
    START_API: "startApi",
    REQ_ACCOUNT_UPDATES_MULTI: "reqAccountUpdatesMulti",
    CANCEL_ACCOUNT_UPDATES_MULTI: "cancelAccountUpdatesMulti",
    REQ_SEC_DEF_OPT_PARAMS: "reqSecDefOptParams",
    REQ_MATCHING_SYMBOLS: "reqMatchingSymbols",
    REQ_HEAD_TIMESTAMP: "reqHeadTimeStamp",
    CANCEL_HEAD_TIMESTAMP: "cancelHeadTimeStamp",
    REQ_COMPLETED_ORDERS: "reqCompletedOrders",
}

# --- messages the server sends ("IN" for the client) ------------------------------------
TICK_PRICE = 1
TICK_SIZE = 2
ERR_MSG = 4
ACCT_VALUE = 6
PORTFOLIO_VALUE = 7
ACCT_UPDATE_TIME = 8
NEXT_VALID_ID = 9
CONTRACT_DATA = 10
MANAGED_ACCTS = 15
HISTORICAL_DATA = 17
TICK_OPTION_COMPUTATION = 21
CURRENT_TIME = 49
CONTRACT_DATA_END = 52
OPEN_ORDER_END = 53
ACCT_DOWNLOAD_END = 54
EXECUTION_DATA_END = 55
TICK_SNAPSHOT_END = 57
MARKET_DATA_TYPE = 58
POSITION_DATA = 61
POSITION_END = 62
ACCOUNT_UPDATE_MULTI = 73
ACCOUNT_UPDATE_MULTI_END = 74
SECDEF_OPT_PARAMS = 75
SECDEF_OPT_PARAMS_END = 76
SYMBOL_SAMPLES = 79
HEAD_TIMESTAMP = 88
COMPLETED_ORDERS_END = 102

_VERSION_RANGE = re.compile(rb"^v(\d+)\.\.(\d+)")


def format_field(value: object) -> str:
    """One field as TWS writes it: bools as 1/0, None as empty, floats without noise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def encode(*fields: object) -> bytes:
    """A complete frame: length prefix plus NUL-terminated fields."""
    payload = "".join(format_field(f) + "\0" for f in fields).encode()
    return _HEADER.pack(len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


class ProtocolError(Exception):
    """The peer sent bytes that are not the TWS protocol."""


class FrameReader:
    """Splits a byte stream into messages (lists of text fields)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[str]]:
        self._buffer += data
        messages: list[list[str]] = []
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {length} bytes")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            text = bytes(self._buffer[_HEADER.size : end]).decode(errors="backslashreplace")
            del self._buffer[:end]
            fields = text.split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            messages.append(fields)
        return messages


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """``v157..178 +PACEAPI`` -> (157, 178)."""
    match = _VERSION_RANGE.match(payload)
    if not match:
        raise ProtocolError(f"bad version range {payload[:40]!r}")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class ContractQuery:
    """The 12 contract fields every ib_async request carries, as sent."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade: str
    strike: float
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str

    @classmethod
    def from_fields(cls, fields: list[str]) -> ContractQuery:
        conid, symbol, sec_type, last, strike, right, mult, exch, prim, cur, local, tclass = fields
        right = {"CALL": "C", "PUT": "P"}.get(right.upper(), right.upper())
        return cls(
            con_id=int(conid or 0),
            symbol=symbol.upper(),
            sec_type=sec_type.upper(),
            last_trade=last.strip(),
            strike=float(strike or 0.0),
            right=right,
            multiplier=mult,
            exchange=exch.upper(),
            primary_exchange=prim.upper(),
            currency=cur.upper(),
            local_symbol=local,
            trading_class=tclass.upper(),
        )


class FieldReader:
    """Reads one request's fields in order; IndexError/ValueError mean a malformed request."""

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self._fields = fields
        self._pos = start

    def text(self) -> str:
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self) -> int:
        value = self.text()
        return int(value) if value else 0

    def bool(self) -> bool:
        return self.int() != 0

    def skip(self, count: int = 1) -> None:
        self._pos += count

    def contract(self) -> ContractQuery:
        fields = self._fields[self._pos : self._pos + 12]
        if len(fields) != 12:
            raise IndexError("contract needs 12 fields")
        self._pos += 12
        return ContractQuery.from_fields(fields)
