"""option_chain: an underlying's options near a target DTE → ``option_snapshots``.

Qualify the underlying; ask reqSecDefOptParams for expiries and strikes; take spot from a
snapshot of the underlying; pick expiries (nearest to ``dte`` or all in [dte_min, dte_max])
and ``strikes`` per side of spot; list each expiry's contracts with ONE contract-details
call (not one per option: 400 options would be 400 messages); then snapshot every option.

Snapshots stream through the line budget rather than in fixed waves: each option takes a
line when one frees, so the budget stays full until the tail of the chain.
"""

from __future__ import annotations

import asyncio

from ib_async import Contract, Option

from v6ray import constants
from v6ray.errors import IBRequestError
from v6ray.gateway import parsing, planning
from v6ray.gateway.handlers import contracts
from v6ray.gateway.handlers.base import HandlerContext, Rows


class OptionChainHandler:
    request_type = "option_chain"
    table = constants.OPTION_SNAPSHOTS_TABLE

    async def run(self, ctx: HandlerContext) -> Rows:
        req = ctx.request
        p = req.parameters
        under = await ctx.qualify(contracts.underlying(req.symbol), f"{req.symbol} underlying")
        spot_ticker, chains = await asyncio.gather(
            ctx.snapshot(under, f"{req.symbol} spot"), self._chains(ctx, under)
        )
        spot = parsing.snapshot_price(spot_ticker)
        ctx.forget_ticker(under)
        exchange = p.get("exchange", "SMART")
        chains = [c for c in chains if c.exchange == exchange] or chains
        today = ctx.now().date()
        expiries = planning.choose_expiries(
            [e for c in chains for e in c.expirations], today,
            dte=p.get("dte"), dte_min=p.get("dte_min"), dte_max=p.get("dte_max"),
        )
        if not expiries:
            raise IBRequestError(200, f"no {req.symbol} option expiry matches {p}", retryable=False)
        options: list[Contract] = []
        for expiry in expiries:
            options.extend(await self._expiry_contracts(ctx, req.symbol, chains, expiry,
                                                        exchange, spot))
        tickers = await ctx.snapshots(options, describe_option)
        now = ctx.now()
        rows = []
        for ticker in tickers:
            rows.append(parsing.option_row(req.request_id, req.symbol, ticker, spot, now))
            ctx.forget_ticker(ticker.contract)
        return rows

    async def _chains(self, ctx: HandlerContext, under: Contract) -> list:
        chains = await ctx.send(
            lambda: ctx.ib.reqSecDefOptParamsAsync(under.symbol, "", under.secType, under.conId),
            f"{under.symbol} option parameters",
        )
        if not chains:
            raise IBRequestError(200, f"IB lists no options for {under.symbol}", retryable=False)
        return list(chains)

    async def _expiry_contracts(
        self, ctx: HandlerContext, symbol: str, chains: list, expiry: str, exchange: str,
        spot: float | None,
    ) -> list[Contract]:
        p = ctx.request.parameters
        listing = [c for c in chains if expiry in c.expirations]
        # Prefer the class named like the symbol (SPX monthly over SPXW when both list it).
        listing.sort(key=lambda c: c.tradingClass != symbol)
        trading_class = listing[0].tradingClass if listing else ""
        details = await ctx.contract_details(
            Option(symbol, expiry, exchange=exchange, tradingClass=trading_class),
            f"{symbol} {expiry} options",
        )
        listed = [d.contract for d in details]
        wanted = set(planning.choose_strikes([c.strike for c in listed], spot, p["strikes"]))
        rights = set(planning.choose_rights(p["rights"]))
        picked = [c for c in listed if c.strike in wanted and c.right[:1] in rights]
        return sorted(picked, key=lambda c: (c.strike, c.right))


def describe_option(option: Contract) -> str:
    """How an error names one option: "SPY 20270115 450 C option"."""
    return (f"{option.symbol} {option.lastTradeDateOrContractMonth} {option.strike:g} "
            f"{option.right[:1]} option")


HANDLER = OptionChainHandler()
