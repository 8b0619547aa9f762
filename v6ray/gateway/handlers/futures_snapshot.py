"""futures_snapshot: the front month (or ``contract_month``) → ``futures_snapshots``."""

from __future__ import annotations

from ib_async import Future

from v6ray import constants
from v6ray.errors import IBRequestError
from v6ray.gateway import parsing, planning
from v6ray.gateway.handlers import contracts
from v6ray.gateway.handlers.base import HandlerContext, Rows


class FuturesSnapshotHandler:
    request_type = "futures_snapshot"
    table = constants.FUTURES_SNAPSHOTS_TABLE

    async def run(self, ctx: HandlerContext) -> Rows:
        req = ctx.request
        p = req.parameters
        exchange = p.get("exchange") or contracts.FUTURE_EXCHANGES.get(req.symbol, "CME")
        month = p.get("contract_month")
        # One contract-details call lists every listed month; we pick locally.
        details = await ctx.contract_details(
            Future(req.symbol, month or "", exchange, currency="USD"), f"{req.symbol} futures"
        )
        listed = [(d.contract.lastTradeDateOrContractMonth, d.contract) for d in details]
        contract = planning.choose_future(listed, ctx.now().date(), month)
        if contract is None:
            wanted = month or "front month"
            raise IBRequestError(
                200, f"No security definition has been found for {req.symbol} {wanted}",
                retryable=False,
            )
        ticker = await ctx.snapshot(contract, f"{req.symbol} snapshot")
        row = parsing.futures_row(req.request_id, req.symbol, ticker, ctx.now())
        ctx.forget_ticker(contract)
        return [row]


HANDLER = FuturesSnapshotHandler()
