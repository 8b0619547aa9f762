"""reqMktData / cancelMktData: snapshots and streams, holding market-data lines.

A line is taken when the request arrives and given back at tickSnapshotEnd (snapshot)
or cancelMktData / disconnect (stream). Lines are global across connections.
"""

from __future__ import annotations

import time

from v6ray.pacing import ib_limits
from v6ray.sim import messages as m
from v6ray.sim import protocol as p
from v6ray.sim.market import Quote
from v6ray.sim.reference import query_symbol, resolve_one
from v6ray.sim.session import ClientSession
from v6ray.sim.universe import Instrument

# IB's tick ids; delayed data (market data type 3/4) uses the "delayed" twin of each.
BID, ASK, LAST, VOLUME, CLOSE = 1, 2, 4, 8, 9
BID_GREEKS, ASK_GREEKS, LAST_GREEKS, MODEL_GREEKS = 10, 11, 12, 13
_DELAYED = {BID: 66, ASK: 67, LAST: 68, VOLUME: 74, CLOSE: 75, BID_GREEKS: 80,
            ASK_GREEKS: 81, LAST_GREEKS: 82, MODEL_GREEKS: 83}
MAX_TICKERS_TEXT = "Max number of tickers has been reached"


def quote_frames(req_id: int, quote: Quote, delayed: bool) -> list[bytes]:
    def tick(kind: int) -> int:
        return _DELAYED[kind] if delayed else kind

    frames = []
    if quote.bid is not None and quote.ask is not None:
        frames += [m.tick_price(req_id, tick(BID), quote.bid, quote.bid_size),
                   m.tick_price(req_id, tick(ASK), quote.ask, quote.ask_size)]
    frames.append(m.tick_price(req_id, tick(LAST), quote.last, quote.last_size))
    if quote.bid is not None:
        frames.append(m.tick_size(req_id, tick(VOLUME), quote.volume))
    frames.append(m.tick_price(req_id, tick(CLOSE), quote.close, 0))
    option = quote.option
    if option is not None:
        und = option.underlying
        frames += [
            m.option_computation(req_id, tick(BID_GREEKS), option.bid_iv, option.bid, und),
            m.option_computation(req_id, tick(ASK_GREEKS), option.ask_iv, option.ask, und),
            m.option_computation(req_id, tick(LAST_GREEKS), option.model_iv, option.model, und),
            m.option_computation(req_id, tick(MODEL_GREEKS), option.model_iv, option.model, und),
        ]
    return frames


def _send_quote(session: ClientSession, req_id: int, instrument: Instrument) -> None:
    quote = session.sim.market.quote(instrument, time.time())
    session.send(*quote_frames(req_id, quote, session.market_data_type in (3, 4)))


def emit_stream_updates(session: ClientSession) -> None:
    for req_id, instrument in list(session.streams.items()):
        _send_quote(session, req_id, instrument)  # type: ignore[arg-type]


def release_line(session: ClientSession, req_id: int) -> None:
    session.lines.discard(req_id)
    session.sim.lines.release((session.id, req_id))


def req_mkt_data(session: ClientSession, fields: list[str]):
    reader = p.FieldReader(fields, start=2)
    req_id = reader.int()
    q = reader.contract()
    if q.sec_type == "BAG":
        reader.skip(4 * reader.int())
    if reader.bool():  # delta-neutral contract
        reader.skip(3)
    reader.text()  # generic tick list: the simulator always sends its full set
    snapshot = reader.bool()
    if session.take_injected(req_id, "mktdata", query_symbol(q), q.sec_type):
        return None
    instrument = resolve_one(session, req_id, q)
    if instrument is None:
        return None
    sim = session.sim
    if not sim.lines.acquire((session.id, req_id), enforce=sim.config.limits):
        session.send_error(req_id, ib_limits.ERR_MAX_TICKERS, MAX_TICKERS_TEXT, violation=True)
        return None
    session.lines.add(req_id)
    session.send(m.market_data_type(req_id, session.market_data_type))
    if snapshot:
        return _snapshot(session, req_id, instrument)
    session.streams[req_id] = instrument
    return _stream_start(session, req_id, instrument)


async def _snapshot(session: ClientSession, req_id: int, instrument: Instrument) -> None:
    try:
        if await session.wait_for_answer(session.sim.config.snapshot_latency):
            _send_quote(session, req_id, instrument)
            session.send(m.tick_snapshot_end(req_id))
            session.sim.counters.requests_served["snapshot"] += 1
    finally:
        release_line(session, req_id)


async def _stream_start(session: ClientSession, req_id: int, instrument: Instrument) -> None:
    if not await session.wait_for_answer(session.sim.config.stream_first_tick_latency):
        return
    if req_id in session.streams:
        _send_quote(session, req_id, instrument)
        session.sim.counters.requests_served["stream"] += 1
        session.ensure_streaming(emit_stream_updates)


def cancel_mkt_data(session: ClientSession, fields: list[str]) -> None:
    req_id = int(fields[2])
    if session.streams.pop(req_id, None) is not None:
        release_line(session, req_id)


HANDLERS = {
    p.REQ_MKT_DATA: req_mkt_data,
    p.CANCEL_MKT_DATA: cancel_mkt_data,
}
