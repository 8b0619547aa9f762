"""Reference-data requests: contract details, option chains, matching symbols."""

from __future__ import annotations

from v6ray.pacing import ib_limits
from v6ray.sim import messages as m
from v6ray.sim import protocol as p
from v6ray.sim.protocol import ContractQuery
from v6ray.sim.session import ClientSession
from v6ray.sim.universe import Instrument

NO_SECURITY_TEXT = "No security definition has been found for the request"


def query_symbol(q: ContractQuery) -> str:
    return q.symbol or q.local_symbol or str(q.con_id)


def resolve_one(session: ClientSession, req_id: int, q: ContractQuery) -> Instrument | None:
    """The single instrument a data request names, or None after sending error 200."""
    found = session.sim.market.book.resolve(q)
    if len(found) == 1:
        return found[0]
    if found:
        text = f"The contract description specified for {query_symbol(q)} is ambiguous."
    else:
        text = NO_SECURITY_TEXT
    session.send_error(req_id, ib_limits.ERR_NO_SECURITY, text)
    return None


async def contract_details(session: ClientSession, fields: list[str]) -> None:
    reader = p.FieldReader(fields, start=2)  # after msg id and version
    req_id = reader.int()
    q = reader.contract()
    if session.take_injected(req_id, "contract_details", query_symbol(q)):
        return
    found = session.sim.market.book.resolve(q)
    if not await session.wait_for_answer(session.sim.config.contract_details_latency):
        return
    if not found:
        session.send_error(req_id, ib_limits.ERR_NO_SECURITY, NO_SECURITY_TEXT)
        return
    session.send(*(m.contract_details(req_id, inst) for inst in found),
                 m.contract_details_end(req_id))
    session.sim.counters.requests_served["contract_details"] += 1


async def sec_def_opt_params(session: ClientSession, fields: list[str]) -> None:
    req_id, symbol, fut_fop_exchange = int(fields[1]), fields[2].upper(), fields[3]
    con_id = int(fields[5] or 0)
    if session.take_injected(req_id, "secdef", symbol):
        return
    # Futures options (futFopExchange set) are not simulated: IB answers those with an
    # empty list too when it has no chain.
    chains = [] if fut_fop_exchange else session.sim.market.book.option_chains(symbol, con_id)
    if not await session.wait_for_answer(session.sim.config.contract_details_latency):
        return
    frames = [
        m.secdef_option_params(req_id, exchange, cls.underlying.con_id, cls.trading_class,
                               [f"{d:%Y%m%d}" for d in cls.expiries], strikes)
        for exchange, cls, strikes in chains
    ]
    session.send(*frames, p.encode(p.SECDEF_OPT_PARAMS_END, req_id))
    session.sim.counters.requests_served["secdef"] += 1


async def matching_symbols(session: ClientSession, fields: list[str]) -> None:
    req_id, pattern = int(fields[1]), fields[2]
    if session.take_injected(req_id, "matching_symbols", pattern):
        return
    if not await session.wait_for_answer(session.sim.config.contract_details_latency):
        return
    session.send(m.symbol_samples(req_id, session.sim.market.book.matching_symbols(pattern)))
    session.sim.counters.requests_served["matching_symbols"] += 1


HANDLERS = {
    p.REQ_CONTRACT_DATA: contract_details,
    p.REQ_SEC_DEF_OPT_PARAMS: sec_def_opt_params,
    p.REQ_MATCHING_SYMBOLS: matching_symbols,
}
