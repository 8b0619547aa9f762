"""Simulator: the asyncio TCP server, state shared by all connections, and faults.

All methods run on the simulator's event loop (SimulatorThread and the Ray actor
marshal calls onto it). Limits that IB applies per account (market-data lines,
historical pacing, open historical requests) are shared by every connection here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from itertools import count

from v6ray.pacing import ib_limits
from v6ray.sim import account, historical, marketdata, reference
from v6ray.sim.config import SimConfig
from v6ray.sim.counters import Counters, write_stats_file
from v6ray.sim.faults import FaultState
from v6ray.sim.limits import HistoricalPacing, MarketDataLines, PacingRules
from v6ray.sim.market import Market
from v6ray.sim.session import ClientSession

log = logging.getLogger(__name__)

_RELISTEN_ATTEMPTS = 50  # the port can take a moment to be bindable again

CONNECTIVITY_LOST_TEXT = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_DATA_LOST_TEXT = (
    "Connectivity between IB and Trader Workstation has been restored - data lost."
)
RESTORED_DATA_KEPT_TEXT = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained."
)


class Simulator:
    """An IB Gateway stand-in speaking the TWS socket protocol."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.market = Market(cfg.seed)
        self.counters = Counters()
        self.faults = FaultState()
        self.lines = MarketDataLines(cfg.market_data_lines)
        self.pacing = HistoricalPacing(PacingRules(
            max_open=cfg.hist_max_open,
            window_requests=cfg.hist_small_bar_requests,
            window=cfg.scaled(cfg.hist_small_bar_window),
            identical_window=cfg.scaled(cfg.hist_identical_window),
            same_contract_window=cfg.scaled(cfg.hist_same_contract_window),
            same_contract_max=cfg.hist_same_contract_max,
        ))
        self.handlers = {**account.HANDLERS, **reference.HANDLERS, **marketdata.HANDLERS,
                         **historical.HANDLERS}
        self._sessions: dict[int, ClientSession] = {}
        self._clients: dict[int, ClientSession] = {}
        self._session_ids = count(1)
        self._server: asyncio.base_events.Server | None = None
        self._port: int | None = None
        self._connectivity = asyncio.Event()
        self._connectivity.set()
        self._loss_epoch = 0
        self._background: set[asyncio.Task] = set()
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self._listen()
        if self.config.stats_file:
            self._spawn(self._write_stats_forever())
        log.info("IB simulator listening on %s:%s (seed %s, time scale %s)",
                 self.config.host, self.port, self.config.seed, self.config.time_scale)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for session in list(self._sessions.values()):
            session.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.config.stats_file:
            write_stats_file(self.config.stats_file, self.stats())

    async def _listen(self) -> None:
        port = self._port if self._port is not None else self.config.port
        for attempt in range(_RELISTEN_ATTEMPTS):
            try:
                self._server = await asyncio.start_server(
                    self._on_connection, self.config.host, port, reuse_address=True)
                break
            except OSError:
                if self._port is None or attempt == _RELISTEN_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1)
        self._port = self._server.sockets[0].getsockname()[1]

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        if self._stopping or time.monotonic() < self.faults.refuse_until:
            self.counters.connections_refused += 1
            writer.close()
            return
        session = ClientSession(self, next(self._session_ids), reader, writer)
        self._sessions[session.id] = session
        self.counters.connections_total += 1
        self.counters.connections_active += 1
        await session.run()

    # --- called by sessions --------------------------------------------------------------
    def register_client(self, session: ClientSession, client_id: int) -> bool:
        holder = self._clients.get(client_id)
        if holder is not None and not holder.closed:
            return False
        self._clients[client_id] = session
        return True

    def session_closed(self, session: ClientSession) -> None:
        if self._sessions.pop(session.id, None) is not None:
            self.counters.connections_active -= 1
        if session.client_id is not None and self._clients.get(session.client_id) is session:
            del self._clients[session.client_id]

    async def connectivity_gate(self) -> bool:
        """Hold an answer while connectivity is lost; False if it was lost for good (1101)."""
        if self._connectivity.is_set():
            return True
        epoch = self._loss_epoch
        await self._connectivity.wait()
        return self._loss_epoch == epoch

    # --- observation ---------------------------------------------------------------------
    def stats(self) -> dict:
        return self.counters.snapshot(
            lines_in_use=self.lines.in_use, lines_peak=self.lines.peak,
            lines_capacity=self.config.market_data_lines,
            hist_open=self.pacing.open, hist_peak=self.pacing.peak_open,
            faults=self.faults.describe(time.monotonic()),
            message_window_seconds=self.config.scaled(1.0),
        )

    async def _write_stats_forever(self) -> None:
        path = self.config.stats_file
        assert path is not None
        while True:
            try:
                write_stats_file(path, self.stats())
            except OSError as exc:  # a full disk must not take the simulator down
                log.warning("cannot write stats file %s: %s", path, exc)
            await asyncio.sleep(self.config.stats_interval)

    # --- faults ----------------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Close every client connection at once; returns how many were dropped."""
        sessions = list(self._sessions.values())
        for session in sessions:
            session.close()
        self.counters.disconnects_by_server += len(sessions)
        return len(sessions)

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``: new connects get ECONNREFUSED; open ones stay."""
        self.faults.refuse_until = max(self.faults.refuse_until, time.monotonic() + seconds)
        if self._server is not None:
            self._server.close()
            self._server = None
        self._spawn(self._listen_again_later())

    async def _listen_again_later(self) -> None:
        while (wait := self.faults.refuse_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        if self._server is None and not self._stopping:
            await self._listen()

    def connectivity_lost(self) -> None:
        """Error 1100 to every client; data answers are held until connectivity returns."""
        self.faults.connectivity_lost = True
        self._connectivity.clear()
        self._broadcast(ib_limits.ERR_CONNECTIVITY_LOST, CONNECTIVITY_LOST_TEXT)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """1102 (data kept: held answers go out) or 1101 (data lost: held answers and
        streams are dropped, clients must resubscribe)."""
        if data_lost:
            self._loss_epoch += 1
            for session in self._sessions.values():
                for req_id in list(session.streams):
                    session.streams.pop(req_id)
                    marketdata.release_line(session, req_id)
        self.faults.connectivity_lost = False
        self._connectivity.set()
        if data_lost:
            self._broadcast(ib_limits.ERR_RESTORED_DATA_LOST, RESTORED_DATA_LOST_TEXT)
        else:
            self._broadcast(ib_limits.ERR_RESTORED_DATA_KEPT, RESTORED_DATA_KEPT_TEXT)

    def _broadcast(self, code: int, text: str) -> None:
        for session in list(self._sessions.values()):
            if session.client_id is not None:
                session.send_error(-1, code, text)

    def set_response_delay(self, seconds: float) -> None:
        """Add ``seconds`` before every data answer (0 to clear)."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, got {seconds!r}")
        self.faults.response_delay = float(seconds)

    def inject_error(self, kind: str, code: int, message: str, count: int = 1,
                     symbol: str | None = None) -> None:
        """Answer the next ``count`` requests of ``kind`` (optionally for ``symbol``) with
        error ``code``/``message`` instead of data."""
        self.faults.inject(kind, code, message, count, symbol)

    def nightly_restart(self, down_seconds: float) -> None:
        """IB's daily restart: every session dropped, connects refused for a while."""
        self.refuse_connections(down_seconds)
        self.drop_connections()

