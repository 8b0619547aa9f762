"""One client connection: handshake, message-rate limit, dispatch, cleanup.

Quick requests (ids, time, account sync) are answered inline; data requests run as
tasks so their latencies overlap, as at IB. Handlers for data live in
marketdata.py, historical.py and reference.py; this module owns the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING

from v6ray.pacing import ib_limits
from v6ray.sim import messages as m
from v6ray.sim import protocol as p
from v6ray.sim.limits import MessageRateLimiter, RateVerdict, ReceiptWindow
from v6ray.sim.receiver import FrameReceiver

if TYPE_CHECKING:
    from v6ray.sim.server import Simulator

log = logging.getLogger(__name__)

Handler = Callable[["ClientSession", list[str]], Coroutine[None, None, None] | None]
HANDSHAKE_TIMEOUT = 10.0
FARM_MESSAGES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class ClientSession:
    def __init__(self, sim: Simulator, session_id: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.id = session_id
        self.reader, self.writer = reader, writer
        self.client_id: int | None = None
        self.market_data_type = 1  # 1 live, 2 frozen, 3 delayed, 4 delayed frozen
        self.next_order_id = 1
        self.lines: set[int] = set()  # reqIds holding a market-data line
        self.streams: dict[int, object] = {}  # reqId -> Instrument being streamed
        self.historical: dict[int, asyncio.Task] = {}  # open historical requests
        self._tasks: set[asyncio.Task] = set()
        self._stream_task: asyncio.Task | None = None
        self._receiver: FrameReceiver | None = None
        self.received_at = 0.0  # arrival of the message being dispatched (monotonic clock)
        self._closed = False
        cfg = sim.config
        self.rate = MessageRateLimiter(cfg.max_messages_per_second, cfg.scaled(1.0),
                                       cfg.message_breaches_before_disconnect)
        self.receipts = ReceiptWindow(cfg.scaled(1.0))

    # --- lifecycle -------------------------------------------------------------------
    async def run(self) -> None:
        try:
            if not await self._handshake():
                return
            # From here a thread of its own reads the socket and stamps each message with
            # its arrival time (receiver.py): IB counts at arrival, and this loop may be
            # busy. The transport keeps writing; its reading was paused by the handshake.
            loop = asyncio.get_running_loop()
            ended = loop.create_future()
            self._receiver = FrameReceiver(
                self.writer.get_extra_info("socket"), loop, self._on_messages,
                lambda: ended.done() or ended.set_result(None), name=f"ib-sim-read-{self.id}",
            ).start()
            await ended
        except (ConnectionError, p.ProtocolError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.close()

    def _on_messages(self, messages: list[list[str]], received_at: float) -> None:
        for fields in messages:
            if self._closed:
                return
            self._on_message(fields, received_at)

    async def _handshake(self) -> bool:
        prefix = await asyncio.wait_for(self.reader.readexactly(4), HANDSHAKE_TIMEOUT)
        if prefix != p.API_PREFIX:
            self.sim.counters.connections_refused += 1
            return False
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        low, high = p.parse_version_range(await self.reader.readexactly(size))
        if not low <= p.SERVER_VERSION <= high:
            self.sim.counters.connections_refused += 1
            return False
        # A TWS client sends nothing more until it has the server version (ib_async's
        # connectAsync waits for it), so nothing is buffered here when the reading moves
        # to the receiver thread: the transport stops reading before we answer.
        self.writer.transport.pause_reading()
        now = datetime.now().astimezone()
        self.send(p.encode(p.SERVER_VERSION, m.server_time_text(now)))
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for req_id in list(self.lines):
            self.sim.lines.release((self.id, req_id))
        self.lines.clear()
        self.streams.clear()
        if self._receiver is not None:
            self._receiver.stop()
        with contextlib.suppress(Exception):
            self.writer.close()
        self.sim.session_closed(self)

    @property
    def closed(self) -> bool:
        """Closed here, or by the client even if its reader thread has not reported it yet
        (a client that reconnects at once with its client id must not meet itself)."""
        if not self._closed and self._receiver is not None and self._receiver.peer_closed():
            self.close()
        return self._closed

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator handler failed", exc_info=task.exception())

    # --- sending ---------------------------------------------------------------------
    def send(self, *frames: bytes) -> None:
        if not self._closed and not self.writer.is_closing():
            self.writer.write(b"".join(frames))

    def send_error(self, req_id: int, code: int, text: str, *, violation: bool = False,
                   user_error: str | None = None) -> None:
        counters = self.sim.counters
        counters.errors_sent[code] += 1
        if violation:
            counters.violations[code] += 1
        if user_error:
            counters.user_errors[user_error] += 1
        self.send(m.error(req_id, code, text))

    def take_injected(self, req_id: int, kind: str, symbol: str, sec_type: str = "") -> bool:
        """Answer with an injected error if one targets this request; True if it did."""
        injected = self.sim.faults.take(kind, symbol, sec_type)
        if injected is None:
            return False
        self.sim.counters.injected_errors[kind] += 1
        self.send_error(req_id, injected.code, injected.message)
        return True

    async def wait_for_answer(self, latency: float) -> bool:
        """Sleep the (scaled) latency plus any injected delay; False if the answer is lost."""
        delay = self.sim.config.scaled(latency) + self.sim.faults.response_delay
        if delay > 0:
            await asyncio.sleep(delay)
        return await self.sim.connectivity_gate() and not self._closed

    # --- dispatch --------------------------------------------------------------------
    def _on_message(self, fields: list[str], now: float) -> None:
        """Handle one message; ``now`` is its arrival time (time.monotonic()'s clock)."""
        counters = self.sim.counters
        try:
            msg_id = int(fields[0])
        except (IndexError, ValueError):
            return
        self.received_at = now
        counters.messages_total += 1
        counters.messages_by_type[p.REQUEST_NAMES.get(msg_id, f"msg{msg_id}")] += 1
        counters.messages_peak_per_window = max(
            counters.messages_peak_per_window, self.receipts.observe(now)
        )
        if self.sim.config.limits:
            verdict = self.rate.admit(now)
            if verdict is not RateVerdict.ACCEPT:
                limit = self.rate.limit
                self.send_error(-1, ib_limits.ERR_MAX_RATE,
                                f"Max rate of messages per second has been exceeded:max={limit} "
                                f"rec={limit + 1} ({self.rate.breaches})", violation=True)
                if verdict is RateVerdict.DISCONNECT:
                    self.sim.counters.disconnects_by_server += 1
                    self.close()
                return
        if self.client_id is None and msg_id != p.START_API:
            return  # TWS ignores everything before startApi
        handler = self.sim.handlers.get(msg_id)
        if handler is None:
            return
        try:
            result = handler(self, fields)
        except (IndexError, ValueError) as exc:
            log.warning("malformed %s: %s", p.REQUEST_NAMES.get(msg_id, msg_id), exc)
            return
        if result is not None:
            self.spawn(result)

    def start_api(self, client_id: int) -> None:
        if not self.sim.register_client(self, client_id):
            self.sim.counters.connections_refused += 1
            self.send_error(-1, ib_limits.ERR_CLIENT_ID_IN_USE,
                            "Unable to connect as the client id is already in use. "
                            "Retry with a unique client id.")
            self.close()
            return
        self.client_id = client_id
        self.send(
            p.encode(p.MANAGED_ACCTS, 1, self.sim.config.account),
            p.encode(p.NEXT_VALID_ID, 1, self.next_order_id),
        )
        for code, text in FARM_MESSAGES:
            self.send_error(-1, code, text)

    # --- streaming -------------------------------------------------------------------
    def ensure_streaming(self, emit: Callable[[ClientSession], None]) -> None:
        """Start the one periodic task that pushes updates for every stream of this session."""
        if self._stream_task is None or self._stream_task.done():
            self._stream_task = self.spawn(self._stream_loop(emit))

    async def _stream_loop(self, emit: Callable[[ClientSession], None]) -> None:
        while not self._closed and self.streams:
            await asyncio.sleep(self.sim.config.stream_interval)
            if not self.sim.faults.connectivity_lost:
                emit(self)
