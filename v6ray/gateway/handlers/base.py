"""What every handler gets: the IB client behind permits and timeouts, and the request.

Every IB call a handler makes goes through ``HandlerContext``: it waits for the pacer's
permit first, bounds the call with a timeout, and turns ib_async's ``RequestError`` into
v6ray's ``IBRequestError`` (code and message kept). A dropped connection surfaces as
``GatewayUnavailable`` so the gateway releases the request instead of failing it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ib_async import IB, BarData, BarDataList, Contract, ContractDetails, Ticker, util
from ib_async.wrapper import RequestError

from v6ray.errors import GatewayUnavailable, IBRequestError
from v6ray.gateway import ib_errors
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.permits import PermitGate
from v6ray.pacing.costs import Cost
from v6ray.pacing.pacer import HistoricalCall
from v6ray.requests.model import IBRequest

T = TypeVar("T")
# Rows of one request, one dict per row (``parsing``'s row builders). The gateway turns a
# whole write batch into Arrow at once: one table per request cost ~130 µs each (profiled).
Rows = list[dict[str, Any]]


class Handler(Protocol):
    """One request type: ``run`` asks IB and returns rows of ``table``."""

    request_type: str
    table: str

    async def run(self, ctx: HandlerContext) -> Rows: ...


def snapshot_failure(
    failures: list[tuple[Contract, BaseException]], total: int,
    describe: Callable[[Contract], str],
) -> BaseException:
    """One error for a batch of snapshots that failed: the first contract, its IB code and
    message, and how many others failed. A lost connection wins (the request is released,
    not failed); a retryable IB error anywhere makes the whole request retryable."""
    for _, exc in failures:
        if isinstance(exc, GatewayUnavailable):
            return exc
    contract, first = failures[0]
    others = f"; {len(failures) - 1} more of {total} failed" if len(failures) > 1 else ""
    if not isinstance(first, IBRequestError):
        return first  # a bug: keep its own type and traceback
    retryable = any(getattr(exc, "retryable", True) for _, exc in failures)
    name = describe(contract)
    text = first.message if first.message.startswith(name) else f"{name}: {first.message}"
    return IBRequestError(first.code, f"{text}{others}", retryable=retryable)


def drop_snapshot_ticker(ib: IB, req_id: int, ticker: Ticker) -> None:
    """Forget a finished (or failed, or timed-out) snapshot in ib_async's wrapper.

    ``Wrapper.startTicker`` files a ticker under ``reqId2Ticker[req_id]``,
    ``ticker2ReqId["snapshot"][ticker]``, ``_reqId2Contract[req_id]`` and
    ``tickers[hash(contract)]``; ``endTicker`` removes only the ticker2ReqId and
    _reqId2Contract entries, and ``reqId2Ticker`` is emptied only by ``reset()`` on a
    disconnect (ib_async 2.1 wrapper.py). Without this, each snapshot left a Ticker
    behind for the life of the connection. Ticks IB sends after this for ``req_id`` are
    ignored (the tick handlers look the ticker up with ``reqId2Ticker.get``). The caller
    keeps the returned ``ticker`` object with its values.
    """
    wrapper = ib.wrapper
    wrapper.endTicker(ticker, "snapshot")
    wrapper.reqId2Ticker.pop(req_id, None)
    wrapper._reqId2Contract.pop(req_id, None)
    # ``_endReq`` (on tickSnapshotEnd or an error) pops these; a timed-out snapshot never
    # gets there, so they must not linger either.
    wrapper._futures.pop(req_id, None)
    wrapper._results.pop(req_id, None)
    # Another live request of the same contract shares this Ticker: leave it filed then.
    if not any(other is ticker for other in wrapper.reqId2Ticker.values()):
        key = hash(ticker.contract)
        if wrapper.tickers.get(key) is ticker:
            del wrapper.tickers[key]


def ib_request_maps(ib: IB) -> dict[str, int]:
    """Sizes of ib_async's per-request maps (``v6ray status``; they must not grow with
    the number of requests served, only with those in flight)."""
    wrapper = ib.wrapper
    return {
        "tickers": len(wrapper.tickers),
        "req_id_to_ticker": len(wrapper.reqId2Ticker),
        "ticker_to_req_id": sum(len(m) for m in wrapper.ticker2ReqId.values()),
        "req_id_to_contract": len(wrapper._reqId2Contract),
        "futures": len(wrapper._futures),
        "results": len(wrapper._results),
    }


@dataclass
class HandlerContext:
    ib: IB
    gate: PermitGate
    config: GatewayConfig
    request: IBRequest
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Told what each granted permit used up, so the gateway's admission budget stops
    # reserving it for this request (it is in the pacer's windows now).
    on_sent: Callable[[Cost], None] = lambda cost: None

    @property
    def priority(self) -> int:
        return int(self.request.priority)

    def now(self) -> datetime:
        return self.clock()

    # --- the one way to await IB ------------------------------------------------------
    async def call(
        self, start: Callable[[], Awaitable[T]], what: str, timeout: float | None = None
    ) -> T:
        """Start an ib_async request (``start()`` sends it) and await it with a timeout,
        mapping its failures."""
        limit = timeout if timeout is not None else self.config.request_timeout
        if not self.ib.isConnected():
            raise GatewayUnavailable(f"not connected ({what})")
        try:
            return await asyncio.wait_for(start(), limit)
        except RequestError as exc:
            raise ib_errors.ib_error(exc.code, exc.message) from None
        except TimeoutError:
            if not self.ib.isConnected():
                raise GatewayUnavailable(f"connection lost during {what}") from None
            raise ib_errors.timeout_error(what, limit) from None
        except ConnectionError as exc:
            raise GatewayUnavailable(f"{what}: {exc}") from None

    # --- building blocks handlers share -----------------------------------------------
    async def send(self, start: Callable[[], Awaitable[T]], what: str) -> T:
        """One plain request: ``start()`` sends it at the permit's instant (so the message
        leaves when the budget says, not when this coroutine next runs) and returns
        ib_async's awaitable, which ``call`` then bounds and maps."""
        try:
            pending = await self.gate.message(start, priority=self.priority)
        except ConnectionError as exc:
            raise GatewayUnavailable(f"{what}: {exc}") from None
        return await self.call(lambda: pending, what)

    async def contract_details(self, contract: Contract, what: str) -> list[ContractDetails]:
        details = await self.send(lambda: self.ib.reqContractDetailsAsync(contract), what)
        if not details:
            raise IBRequestError(
                200, f"No security definition has been found for {what}", retryable=False
            )
        return details

    async def qualify(self, contract: Contract, what: str) -> Contract:
        """The first matching contract (with its conId) for ``contract``."""
        return (await self.contract_details(contract, what))[0].contract

    async def snapshot(self, contract: Contract, what: str) -> Ticker:
        """A one-shot quote; holds one market-data line until IB's tickSnapshotEnd."""
        ib = self.ib

        def send() -> tuple[int, asyncio.Future, Ticker]:
            req_id = ib.client.getReqId()  # ConnectionError when down
            future = ib.wrapper.startReq(req_id, contract)
            ticker = ib.wrapper.startTicker(req_id, contract, "snapshot")
            ib.client.reqMktData(req_id, contract, "", True, False, [])
            return req_id, future, ticker

        try:
            async with self.gate.line(send, priority=self.priority) as (req_id, future, ticker):
                self.on_sent(Cost(lines=1))
                try:
                    await self.call(lambda: future, what)
                except (IBRequestError, asyncio.CancelledError) as exc:
                    self._cancel_at_ib(exc, lambda: ib.client.cancelMktData(req_id))
                    raise
                finally:
                    drop_snapshot_ticker(ib, req_id, ticker)
                return ticker
        except ConnectionError as exc:
            raise GatewayUnavailable(f"{what}: {exc}") from None

    async def snapshots(
        self, contracts: list[Contract], describe: Callable[[Contract], str]
    ) -> list[Ticker]:
        """Snapshot every contract at once (each waits for its line). On the first failure
        the rest are cancelled and ONE readable error says which contract failed and how,
        never a TaskGroup's ExceptionGroup."""
        tasks = [asyncio.ensure_future(self.snapshot(c, describe(c))) for c in contracts]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failures = [
            (contract, task.exception()) for contract, task in zip(contracts, tasks, strict=True)
            if not task.cancelled() and task.exception() is not None
        ]
        if failures:
            raise snapshot_failure(failures, len(contracts), describe)
        return [task.result() for task in tasks]

    def _cancel_at_ib(self, exc: BaseException, cancel: Callable[[], None]) -> None:
        """After our timeout or a cancellation, tell IB too (its line or open request).
        Not awaited (we may be cancelled): the cancel joins the gate's paced backlog."""
        timed_out = getattr(exc, "code", None) == ib_errors.CODE_TIMEOUT
        if (timed_out or isinstance(exc, asyncio.CancelledError)) and self.ib.isConnected():
            with contextlib.suppress(Exception):
                cancel()

    def forget_ticker(self, contract: Contract) -> None:
        """Drop ib_async's cached Ticker once its values are copied into a row."""
        self.ib.wrapper.tickers.pop(hash(contract), None)

    async def historical(
        self, contract: Contract, call: HistoricalCall, end: datetime | str
    ) -> list[BarData]:
        """One paced reqHistoricalData, sent with our own request id so that a timeout, a
        pause (1100) or a shutdown cancels it at IB too (an open request counts against
        IB's 50). Our timeout raises (retryable) instead of returning ib_async's silent
        empty list, so an empty answer here really means "IB has no bars"."""
        ib = self.ib
        limit = self.config.historical_timeout

        def send() -> tuple[int, asyncio.Future]:
            req_id = ib.client.getReqId()  # ConnectionError when down
            bars = BarDataList()
            bars.reqId = req_id
            future = ib.wrapper.startReq(req_id, contract, container=bars)
            ib.client.reqHistoricalData(
                req_id, contract, util.formatIBDatetime(end), call.duration,
                call.bar_size, call.what_to_show, call.use_rth, 2, False, [],
            )
            return req_id, future

        try:
            async with self.gate.historical(call, send, priority=self.priority) as sent:
                req_id, future = sent
                weight = call.weight
                if call.small:
                    self.on_sent(Cost(small_bar=weight, historical=1))
                else:
                    self.on_sent(Cost(large_bar=weight, historical=1))
                try:
                    bars = await self.call(
                        lambda: future, f"historical data for {call.symbol}", limit
                    )
                    return list(bars)
                except (IBRequestError, asyncio.CancelledError) as exc:
                    self._cancel_at_ib(exc, lambda: ib.client.cancelHistoricalData(req_id))
                    raise
                finally:
                    ib.wrapper._futures.pop(req_id, None)
                    ib.wrapper._results.pop(req_id, None)
        except ConnectionError as exc:
            raise GatewayUnavailable(f"historical data: {exc}") from None
