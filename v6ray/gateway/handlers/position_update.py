"""position_update: reqPositions → ``positions`` (filtered by symbol and account)."""

from __future__ import annotations

import asyncio

from v6ray import constants
from v6ray.gateway import parsing
from v6ray.gateway.handlers.base import HandlerContext, Rows


class PositionUpdateHandler:
    request_type = "position_update"
    table = constants.POSITIONS_TABLE

    def __init__(self) -> None:
        # ib_async keys the positions request by a fixed name: two at once would share one
        # future, so they take turns (they are cheap).
        self._lock: asyncio.Lock | None = None

    async def run(self, ctx: HandlerContext) -> Rows:
        if self._lock is None:
            self._lock = asyncio.Lock()
        req = ctx.request
        async with self._lock:
            await ctx.send(ctx.ib.reqPositionsAsync, "positions")
            positions = ctx.ib.positions()
        rows = parsing.position_rows(
            req.request_id, positions, ctx.now(),
            symbol=req.symbol, account=req.parameters.get("account"),
        )
        return rows


HANDLER = PositionUpdateHandler()
