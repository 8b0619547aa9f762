"""market_bars: reqHistoricalData → ``market_bars``, split into IB-sized, paced chunks.

Every row carries its series identity (``instruments.bar_series``: use_rth and which
instrument) so a use_rth=false load or a dated future never replaces another series' bars.
A chunk IB answers with "no data" (a window without trading) is skipped; when no chunk has
bars, the request ends SUCCESS with 0 rows and a note (``ib_errors.NoData``), not retried.
"""

from __future__ import annotations

from v6ray import constants
from v6ray.errors import IBRequestError
from v6ray.gateway import ib_errors, parsing
from v6ray.gateway.handlers import contracts
from v6ray.gateway.handlers.base import HandlerContext, Rows
from v6ray.pacing.pacer import HistoricalCall
from v6ray.requests import durations, instruments


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
        series = {
            "symbol": req.symbol,
            "bar_size": p["bar_size"],
            "what_to_show": p["what_to_show"],
            **instruments.bar_series(req.symbol, p),
            **parsing.contract_columns(contract),
        }
        now = ctx.now()
        end = durations.normalize_end(p.get("end"), now)
        chunks = durations.request_chunks(end, p["duration"], p["bar_size"],
                                          use_rth=bool(p["use_rth"]), sec_type=contract.secType)
        rows: Rows = []
        no_data: list[str] = []
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
            try:
                bars = await ctx.historical(contract, call, end_arg)
            except IBRequestError as exc:
                if not ib_errors.is_no_data(exc.code, exc.message):
                    raise
                no_data.append(exc.message)  # this window has no bars: the others may
                continue
            rows.extend(parsing.bar_rows(req.request_id, series, bars))
        if not rows:
            raise ib_errors.NoData(self.table, ib_errors.no_data_note(no_data))
        return rows


HANDLER = MarketBarsHandler()
