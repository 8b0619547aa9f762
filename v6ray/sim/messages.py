"""Builders for the frames the server sends, field by field as ib_async decodes them."""

from __future__ import annotations

from datetime import datetime

from v6ray.sim import protocol as p
from v6ray.sim.blackscholes import Greeks
from v6ray.sim.calendar import IB_TIMEZONE_NAME, NEW_YORK, SessionKind, trading_hours
from v6ray.sim.universe import Instrument, Underlying

_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,LMT,MKT,MOC,STP,STPLMT,TRAIL,WHATIF"  # noqa: E501


def error(req_id: int, code: int, text: str) -> bytes:
    return p.encode(p.ERR_MSG, 2, req_id, code, text, "")


def contract_details(req_id: int, inst: Instrument) -> bytes:
    today = datetime.now(NEW_YORK).date()
    kind = inst.session_kind
    hours = trading_hours(kind, False, today, 5)
    liquid = trading_hours(kind, True, today, 5) if kind is not SessionKind.INDEX else hours
    is_derivative = inst.sec_type in ("FUT", "CONTFUT", "OPT")
    return p.encode(
        p.CONTRACT_DATA, req_id, inst.symbol, inst.sec_type, inst.expiry,
        inst.strike, inst.right, inst.exchange, "USD", inst.local_symbol,
        inst.trading_class if is_derivative else inst.symbol, inst.trading_class, inst.con_id,
        inst.min_tick, inst.multiplier, _ORDER_TYPES, ",".join(inst.valid_exchanges), 1,
        inst.under_con_id, inst.long_name, inst.primary_exchange, inst.contract_month,
        inst.industry, inst.category, "", IB_TIMEZONE_NAME, hours, liquid, "", "",
        0,  # no secIds
        1, inst.under_symbol, inst.under_sec_type, "26" if inst.sec_type == "STK" else "32",
        inst.expiry, _stock_type(inst),
        1, 1, 1,  # minSize, sizeIncrement, suggestedSizeIncrement
    )


def _stock_type(inst: Instrument) -> str:
    if inst.sec_type != "STK":
        return ""
    return "ETF" if inst.industry == "ETF" else "COMMON"


def contract_details_end(req_id: int) -> bytes:
    return p.encode(p.CONTRACT_DATA_END, 1, req_id)


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0) -> bytes:
    return p.encode(p.TICK_PRICE, 6, req_id, tick_type, price, size, 0)


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    return p.encode(p.TICK_SIZE, 6, req_id, tick_type, size)


def option_computation(req_id: int, tick_type: int, iv: float, g: Greeks, und: float) -> bytes:
    return p.encode(p.TICK_OPTION_COMPUTATION, req_id, tick_type, 0, iv, g.delta, g.price, 0.0,
                    g.gamma, g.vega, g.theta, und)


def tick_snapshot_end(req_id: int) -> bytes:
    return p.encode(p.TICK_SNAPSHOT_END, 1, req_id)


def market_data_type(req_id: int, data_type: int) -> bytes:
    return p.encode(p.MARKET_DATA_TYPE, 1, req_id, data_type)


def _contract_fields(inst: Instrument, exchange: str) -> tuple:
    return (inst.con_id, inst.symbol, inst.sec_type, inst.expiry, inst.strike, inst.right,
            inst.multiplier, exchange, "USD", inst.local_symbol, inst.trading_class)


def position(account: str, inst: Instrument, quantity: float, avg_cost: float) -> bytes:
    return p.encode(p.POSITION_DATA, 3, account, *_contract_fields(inst, inst.exchange),
                    quantity, avg_cost)


def position_end() -> bytes:
    return p.encode(p.POSITION_END, 1)


def portfolio_value(account: str, inst: Instrument, quantity: float, price: float,
                    avg_cost: float, multiplier: float) -> bytes:
    value = quantity * price * multiplier
    unrealized = value - quantity * avg_cost
    return p.encode(
        p.PORTFOLIO_VALUE, 8, inst.con_id, inst.symbol, inst.sec_type, inst.expiry, inst.strike,
        inst.right, inst.multiplier, inst.primary_exchange, "USD", inst.local_symbol,
        inst.trading_class, quantity, round(price, 4), round(value, 2), avg_cost,
        round(unrealized, 2), 0.0, account,
    )


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return p.encode(p.ACCT_VALUE, 2, key, value, currency, account)


def account_time(now: datetime) -> bytes:
    return p.encode(p.ACCT_UPDATE_TIME, 1, f"{now:%H:%M}")


def account_download_end(account: str) -> bytes:
    return p.encode(p.ACCT_DOWNLOAD_END, 1, account)


def account_update_multi(req_id: int, account: str, key: str, value: str) -> bytes:
    return p.encode(p.ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", key, value, "USD")


def secdef_option_params(req_id: int, exchange: str, under_con_id: int, trading_class: str,
                         expiries: list[str], strikes: list[float]) -> bytes:
    return p.encode(p.SECDEF_OPT_PARAMS, req_id, exchange, under_con_id, trading_class, "100",
                    len(expiries), *expiries, len(strikes), *strikes)


def symbol_samples(req_id: int, found: list[Underlying]) -> bytes:
    fields: list[object] = [p.SYMBOL_SAMPLES, req_id, len(found)]
    for u in found:
        derivatives = ["OPT", "FUT"] if u.sec_type == "IND" else ["OPT", "WAR", "CFD"]
        fields += [u.con_id, u.symbol, u.sec_type, u.primary_exchange, "USD", len(derivatives),
                   *derivatives, u.long_name, ""]
    return p.encode(*fields)


def head_timestamp(req_id: int, text: str) -> bytes:
    return p.encode(p.HEAD_TIMESTAMP, req_id, text)


def historical_data(req_id: int, start: str, end: str, rows: list[str]) -> bytes:
    """``rows``: each bar's 8 fields already NUL-joined (see historical._format_rows)."""
    head = f"{p.HISTORICAL_DATA}\0{req_id}\0{start}\0{end}\0{len(rows)}\0"
    body = "".join(row + "\0" for row in rows)
    return p.encode_raw((head + body).encode())


def server_time_text(now: datetime) -> str:
    """The connection time TWS sends in the handshake, e.g. ``20250106 10:00:00 EST``."""
    local = now.astimezone(NEW_YORK)
    return f"{local:%Y%m%d %H:%M:%S} {local.tzname()}"


