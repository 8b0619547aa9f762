"""Connect-time and account requests: ids, time, positions, account updates, orders.

The paper account holds a small fixed portfolio (stocks, two options, a future),
rebuilt from today's listings so every position is a contract the simulator serves.
"""

from __future__ import annotations

import time
from datetime import datetime

from v6ray.sim import messages as m
from v6ray.sim import protocol as p
from v6ray.sim.lookup import today_in_new_york
from v6ray.sim.market import Market
from v6ray.sim.session import ClientSession
from v6ray.sim.universe import (
    UNDERLYINGS,
    Instrument,
    make_option,
    option_classes,
    underlying_instrument,
)

# (symbol, quantity, average cost as a fraction of today's reference price)
_STOCK_POSITIONS = (("SPY", 100, 0.95), ("AAPL", 50, 0.90), ("QQQ", -20, 1.02))


def paper_positions(market: Market) -> list[tuple[Instrument, float, float]]:
    """(instrument, quantity, IB average cost) of the paper portfolio; avg cost includes
    the multiplier for options and futures, as IB reports it."""
    today = today_in_new_york()
    out: list[tuple[Instrument, float, float]] = []
    for symbol, quantity, cost in _STOCK_POSITIONS:
        u = UNDERLYINGS[symbol]
        out.append((underlying_instrument(u, u.primary_exchange),
                    quantity, round(market.reference_spot(u, today) * cost, 4)))
    for symbol, class_index, right, moneyness, quantity in (("SPY", 0, "C", 1.0, 5),
                                                            ("SPX", 1, "P", 0.9, -2)):
        u = UNDERLYINGS[symbol]
        cls = option_classes(u, today)[class_index]
        strikes = market.book.strikes(u, today)
        target = market.reference_spot(u, today) * moneyness
        strike = min(strikes, key=lambda k: abs(k - target))
        expiry = cls.expiries[min(len(cls.expiries) - 1, 12)]
        option = make_option(cls, expiry, strike, right, "SMART")
        market.book.remember(option)
        out.append((option, quantity, round(market.mid(option, time.time()) * 100 * 0.9, 4)))
    front = market.book.futures("ES")[0]
    out.append((front, 1, round(market.mid(front, time.time()) * 50 * 0.99, 2)))
    return out


def handle_start_api(session: ClientSession, fields: list[str]) -> None:
    session.start_api(int(fields[2]))


def handle_positions(session: ClientSession, fields: list[str]) -> None:
    if session.take_injected(-1, "positions", "*"):
        return
    account = session.sim.config.account
    frames = [m.position(account, inst, qty, cost)
              for inst, qty, cost in paper_positions(session.sim.market)]
    session.send(*frames, m.position_end())
    session.sim.counters.requests_served["positions"] += 1


def handle_account_updates(session: ClientSession, fields: list[str]) -> None:
    subscribe = fields[2] == "1"
    if not subscribe:
        return
    sim = session.sim
    account = sim.config.account
    now = time.time()
    frames, net = [], 1_000_000.0
    for inst, qty, cost in paper_positions(sim.market):
        multiplier = float(inst.multiplier or 1)
        price = sim.market.mid(inst, now)
        frames.append(m.portfolio_value(account, inst, qty, price, cost, multiplier))
        net += qty * price * multiplier - qty * cost
    for key, value in (("NetLiquidation", net), ("TotalCashValue", 1_000_000.0),
                       ("BuyingPower", 4 * net), ("AvailableFunds", net * 0.8),
                       ("ExcessLiquidity", net * 0.8)):
        frames.append(m.account_value(key, f"{value:.2f}", "USD", account))
    frames.append(m.account_value("AccountType", "INDIVIDUAL", "", account))
    frames += [m.account_time(datetime.now()), m.account_download_end(account)]
    session.send(*frames)


def handle_account_updates_multi(session: ClientSession, fields: list[str]) -> None:
    req_id, account = int(fields[2]), fields[3] or session.sim.config.account
    session.send(
        m.account_update_multi(req_id, account, "NetLiquidation", "1000000.00"),
        m.account_update_multi(req_id, account, "TotalCashValue", "1000000.00"),
        p.encode(p.ACCOUNT_UPDATE_MULTI_END, 1, req_id),
    )


def handle_executions(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.EXECUTION_DATA_END, 1, int(fields[2])))


def handle_open_orders(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.OPEN_ORDER_END, 1))


def handle_completed_orders(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.COMPLETED_ORDERS_END))


def handle_ids(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.NEXT_VALID_ID, 1, session.next_order_id))


def handle_managed_accounts(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.MANAGED_ACCTS, 1, session.sim.config.account))


def handle_current_time(session: ClientSession, fields: list[str]) -> None:
    session.send(p.encode(p.CURRENT_TIME, 1, int(time.time())))


def handle_market_data_type(session: ClientSession, fields: list[str]) -> None:
    data_type = int(fields[2])
    if data_type in (1, 2, 3, 4):
        session.market_data_type = data_type


def handle_place_order(session: ClientSession, fields: list[str]) -> None:
    session.send_error(int(fields[1]), 321, "Error validating request.-'bN' : cause - "
                       "The API interface is currently in Read-Only mode.")


def handle_ignored(session: ClientSession, fields: list[str]) -> None:
    """Requests TWS accepts without answering (auto open orders, cancels of nothing)."""


HANDLERS = {
    p.START_API: handle_start_api,
    p.REQ_POSITIONS: handle_positions,
    p.CANCEL_POSITIONS: handle_ignored,
    p.REQ_ACCT_DATA: handle_account_updates,
    p.REQ_ACCOUNT_UPDATES_MULTI: handle_account_updates_multi,
    p.CANCEL_ACCOUNT_UPDATES_MULTI: handle_ignored,
    p.REQ_EXECUTIONS: handle_executions,
    p.REQ_OPEN_ORDERS: handle_open_orders,
    p.REQ_ALL_OPEN_ORDERS: handle_open_orders,
    p.REQ_AUTO_OPEN_ORDERS: handle_ignored,
    p.REQ_COMPLETED_ORDERS: handle_completed_orders,
    p.REQ_IDS: handle_ids,
    p.REQ_MANAGED_ACCTS: handle_managed_accounts,
    p.REQ_CURRENT_TIME: handle_current_time,
    p.REQ_MARKET_DATA_TYPE: handle_market_data_type,
    p.PLACE_ORDER: handle_place_order,
}
