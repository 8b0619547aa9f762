"""The one IB connection: connect, watch, reconnect (the gateway's watchdog).

* connect with a timeout, ``readonly=True``, ``RaiseRequestErrors`` on;
* reconnect with capped, jittered exponential backoff (``v6ray.backoff``), and not at all
  while the circuit breaker is open (a dead gateway is not hammered);
* 1100 (IB lost its own connectivity) pauses the gateway: ``ready`` clears and the drain
  loop releases in-flight requests; 1101/1102 resume it;
* 326 (client id in use, typical right after a restart while IB still holds the old
  session): wait and retry, then say so plainly in ``last_error``;
* every message ib_async writes (connect-time requests, cancels, re-requests after 1102,
  not only the requests handlers send) goes through the gateway's ``PermitGate.write``,
  so the message rate IB counts is the one the pacer keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ib_async import IB
from ib_async.ib import StartupFetchNONE

from v6ray.backoff import backoff_delay
from v6ray.gateway.breaker import CircuitBreaker
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.permits import PermitGate
from v6ray.pacing import ib_limits

log = logging.getLogger(__name__)

CONNECTING, CONNECTED, DISCONNECTED, STOPPING, STOPPED = (
    "connecting", "connected", "disconnected", "stopping", "stopped",
)


class Connection:
    def __init__(
        self,
        config: GatewayConfig,
        breaker: CircuitBreaker,
        gate: PermitGate,
        *,
        on_pause: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.config = config
        self.breaker = breaker
        self.gate = gate
        self._on_pause = on_pause
        self.ib = IB()
        self.ib.RaiseRequestErrors = True  # errors end requests instead of empty answers
        self._route_writes()
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        self.state = DISCONNECTED
        self.paused = False  # 1100 received, 1101/1102 not yet
        self.ib_errors: Counter[int] = Counter()
        self.last_error: str | None = None
        self.reconnects = 0
        self.connects = 0
        self._attempt = 0
        self._client_id_conflicts = 0
        self._saw_326 = False
        self._refused = asyncio.Event()  # 326 during this connect: IB closed the session
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = False
        self._rng = random.Random()

    def _route_writes(self) -> None:
        """Replace ib_async's ``Client.sendMsg`` (its own 45/s FIFO throttle, which knows
        neither priorities nor our other budgets) by the gate's paced write. Every API
        message ib_async sends passes through ``sendMsg``; only the version handshake
        before startApi, which IB does not count as a message, goes to the socket
        directly."""
        client = self.ib.client
        # ib_async's throttle (in the ``sendMsg`` replaced below) is no longer consulted;
        # set to the same numbers the gate paces by, so no second rule is ever in play.
        limits = self.gate.pacer.limits
        client.MaxRequests = limits.messages
        client.RequestsInterval = limits.message_send_window
        gate = self.gate

        def send_msg(msg: str | None) -> None:
            if not msg:
                return
            frame = client._prefix(msg.encode())
            gate.write(lambda: client.conn.sendMsg(frame))

        client.sendMsg = send_msg

    # --- state ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == CONNECTED and not self.paused and self.ib.isConnected()

    async def wait_ready(self, timeout: float) -> bool:
        if self.ready:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.ready

    def _update_ready(self) -> None:
        if self.ready:
            self._ready.set()
        else:
            self._ready.clear()

    # --- IB events --------------------------------------------------------------------
    def _on_error(self, req_id: int, code: int, message: str, *args: Any) -> None:
        self.ib_errors[code] += 1
        if code in ib_limits.INFO_CODES:
            return
        if code in ib_limits.CONNECTIVITY_LOST_CODES:
            self.paused = True
            self.last_error = f"IB error {code}: {message}"
            self._update_ready()
            self._on_pause(f"IB error {code}")
        elif code in ib_limits.CONNECTIVITY_RESTORED_CODES:
            self.paused = False
            self._update_ready()
        elif code == ib_limits.ERR_CLIENT_ID_IN_USE:
            self._saw_326 = True
            self._refused.set()
            if not self._gave_up_on_client_id:  # the plain give-up message stays up
                self.last_error = f"IB error {code}: {message}"
        elif req_id == -1:
            self.last_error = f"IB error {code}: {message}"

    def _on_disconnected(self) -> None:
        self.gate.drop_backlog()  # frames of a closed session must not reach the next one
        if self.state == CONNECTED:
            log.warning("IB connection lost")
            self.state = DISCONNECTED
            self._on_pause("disconnected")
        self._update_ready()
        self._wake.set()

    # --- watchdog ---------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the connection up until ``stop``; returns after disconnecting."""
        while not self._stopping:
            if self.ib.isConnected() and self.state == CONNECTED:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            if not self.breaker.allow():
                await self._sleep(max(0.05, self.breaker.retry_after()))
                continue
            if await self._connect_once():
                continue
            await self._sleep(self._retry_delay())
        self.state = STOPPED

    def _retry_delay(self) -> float:
        if self._saw_326:
            return self.config.client_id_retry_seconds
        return backoff_delay(
            max(1, self._attempt),
            base=self.config.reconnect_base,
            cap=self.config.reconnect_cap,
            rng=self._rng,
        )

    async def _connect_once(self) -> bool:
        cfg = self.config
        self.state = CONNECTING
        self._saw_326 = False
        self._refused.clear()
        self._attempt += 1
        started = time.monotonic()
        try:
            await self._connect_or_refused()
            if not self.ib.isConnected():
                raise ConnectionError("connection closed during the handshake")
        except Exception as exc:  # any failure to connect is one breaker failure
            self.state = DISCONNECTED
            self.breaker.record_failure()
            if self._saw_326:
                self._client_id_conflicts += 1
                if self._gave_up_on_client_id:
                    self.last_error = (
                        f"IB error 326: client id {cfg.client_id} is in use by another "
                        f"session; still retrying every {cfg.client_id_retry_seconds:g} s "
                        "(set a different client id if this persists)"
                    )
            else:
                self.last_error = f"connect to {cfg.host}:{cfg.port} failed: {exc!r}"[:500]
            with contextlib.suppress(Exception):
                self.ib.disconnect()
            log.info("connect failed after %.2fs: %s", time.monotonic() - started, exc)
            return False
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self._attempt = 0
        self._client_id_conflicts = 0
        self.paused = False
        self.state = CONNECTED
        self.breaker.record_success()
        self._update_ready()
        log.info("connected to IB at %s:%s as client %s", cfg.host, cfg.port, cfg.client_id)
        return True

    async def _connect_or_refused(self) -> None:
        """``connectAsync``, but a 326 ends the try at once: IB closes the session, yet
        ib_async would wait the whole ``connect_timeout`` for an API start that never comes,
        stretching every 326 retry from ``client_id_retry_seconds`` to that timeout."""
        cfg = self.config
        connect = asyncio.ensure_future(self.ib.connectAsync(
            cfg.host, cfg.port, clientId=cfg.client_id, timeout=cfg.connect_timeout,
            readonly=True, fetchFields=StartupFetchNONE,
        ))
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait({connect, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not connect.done():
                connect.cancel()
                await asyncio.wait({connect})  # ib_async disconnects on its way out
        if connect.cancelled():
            raise ConnectionError(f"IB error 326: client id {cfg.client_id} is in use")
        connect.result()

    @property
    def _gave_up_on_client_id(self) -> bool:
        return self._client_id_conflicts >= self.config.client_id_max_retries

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def disconnect(self) -> None:
        self.state = STOPPING
        with contextlib.suppress(Exception):
            self.ib.disconnect()
        self.state = STOPPED
        self._update_ready()
