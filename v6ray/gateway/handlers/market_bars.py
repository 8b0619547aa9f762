"""market_bars: reqHistoricalData → ``market_bars``, split into IB-sized, paced chunks."""

from __future__ import annotations

from v6ray import constants
from v6ray.gateway import parsing, planning
from v6ray.gateway.handlers import contracts
from v6ray.gateway.handlers.base import HandlerContext, Rows
from v6ray.gateway.pacing import HistoricalCall


class MarketBarsHandler:
    request_type = "market_bars"
    table = constants.MARKET_BARS_TABLE

    async def run(self, ctx: HandlerContext) -> Rows:
        req = ctx.request
        p = req.parameters
        contract = contracts.underlying(
            req.symbol, p.get("sec_type"), p.get("exchange"), p.get("contract_month")
        )
        if contracts.needs_qualifying(contract):
            contract = await ctx.qualify(contract, f"{req.symbol} {contract.secType}")
        now = ctx.now()
        end = planning.parse_end(p.get("end"), now)
        chunks = planning.bar_chunks(p["duration"], p["bar_size"], end,
                                     use_rth=bool(p["use_rth"]), sec_type=contract.secType)
        rows = []
        for chunk in chunks:
            # "" asks IB for "up to now"; a chunk ending elsewhere needs an absolute end.
            end_arg = "" if chunk.end == end and not p.get("end") else chunk.end
            call = HistoricalCall(
                symbol=req.symbol,
                sec_type=contract.secType,
                exchange=contract.exchange,
                what_to_show=p["what_to_show"],
                bar_size=p["bar_size"],
                duration=chunk.duration,
                end=end_arg if isinstance(end_arg, str) else end_arg.isoformat(),
                use_rth=bool(p["use_rth"]),
            )
            bars = await ctx.historical(contract, call, end_arg)
            rows.extend(parsing.bar_rows(req.request_id, req.symbol, p["bar_size"],
                                         p["what_to_show"], bars))
        return rows


HANDLER = MarketBarsHandler()
