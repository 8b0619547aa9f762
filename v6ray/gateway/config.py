"""GatewayConfig: every tunable of the IBGateway actor in one frozen dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from v6ray import constants
from v6ray.pacing import ib_limits


@dataclass(frozen=True)
class GatewayConfig:
    host: str = constants.DEFAULT_IB_HOST
    port: int = constants.DEFAULT_IB_PORT
    client_id: int = constants.DEFAULT_CLIENT_ID
    # Multiplies every IB pacing window (1.0 against real IB; tests match the simulator).
    time_scale: float = 1.0

    # --- connection -----------------------------------------------------------------
    connect_timeout: float = 10.0
    reconnect_base: float = 0.25  # first reconnect delay; doubles up to reconnect_cap
    reconnect_cap: float = 30.0
    # 326 "client id in use": the previous session (ours, before a restart) is usually
    # still closing at IB; wait this long between tries before giving up loudly.
    client_id_retry_seconds: float = 2.0
    client_id_max_retries: int = 30
    breaker_failures: int = 5  # consecutive connect/timeout failures that open the circuit
    breaker_open_seconds: float = 15.0  # how long the circuit stays open before a probe

    # --- requests -------------------------------------------------------------------
    request_timeout: float = 20.0  # any one IB call (contract details, snapshot, positions)
    historical_timeout: float = 60.0  # one reqHistoricalData chunk
    claim_batch: int = 50
    max_in_flight: int = 200
    idle_min: float = 0.02  # empty queue: first idle pause, doubling to idle_max
    idle_max: float = 0.5
    lease_renew_seconds: float = 10.0

    # --- pacing (the broker's own budgets, inside IB's limits) ----------------------
    pacing: bool = True  # False only against a simulator with limits off (benchmarks)
    # The most messages IB may count in any one second *at receipt*, everything the
    # connection sends included (ib_async's own requests, cancels, connect traffic).
    # IB cuts at 50 (error 100; the third breach closes the session): 45 leaves 10%.
    messages_per_second: int = 45
    # How much later than the one before it IB may read one of our messages (network
    # jitter, the receiver's scheduling delay), in real seconds: the margin. The pacer
    # counts its writes over IB's second plus this, so IB never counts more than
    # ``messages_per_second`` in one second: 45 per 1.05 s, ~42.9/s sustained. 50 ms: a
    # simulator sharing two busy cores with the gateway was seen reading 25 ms late.
    receipt_jitter: float = 0.05
    market_data_lines: int = ib_limits.DEFAULT_MARKET_DATA_LINES
    line_reserve: int = 5  # lines kept free for anything outside the gateway's accounting
    hist_max_open: int = 45  # IB: 50 open historical requests (error 322)
    large_bar_requests: int = 120  # soft budget for bars > 30 s per large_bar_window
    large_bar_window: float = 60.0
    # Relative + absolute widening of every window: IB (or the simulator) timestamps on
    # receipt, so jitter between our send and their receipt must not shrink a window.
    window_margin: float = 0.005
    window_margin_seconds: float = 0.12
    # The message window never shrinks below this many real seconds: the receiver counts on
    # receipt, and a receiver that stalls 100 ms reads 100 ms of our sends at once; a
    # millisecond-scale window (time_scale 0.01) would let such a bunch exceed 50. (Only
    # at time scales under 0.25: at 1.0, IB's real second is the window.)
    message_window_floor: float = 0.25
    pipeline_depth: int = 8  # requests admitted ahead of a window freeing (keeps it busy)

    # --- writing --------------------------------------------------------------------
    write_batch_rows: int = 1000  # flush a table's buffer at this many rows ...
    # ... or this long after its first row. Under load, batches grow anyway while the
    # previous MERGE (~25-35 ms) runs, so this only bounds the commit rate of a trickle
    # (<= 20 per second per table) and is paid as latency by every request: 0.2 s was a
    # third of a futures snapshot's enqueue-to-row time in the overhead bench.
    write_batch_seconds: float = 0.05
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if not 2 <= self.messages_per_second < ib_limits.MAX_MESSAGES_PER_SECOND:
            raise ValueError("messages_per_second must be within 2..49 (IB cuts at 50/s)")
        if not self.receipt_jitter >= 0:
            raise ValueError(f"receipt_jitter must be >= 0, got {self.receipt_jitter}")
        if self.line_reserve >= self.market_data_lines:
            raise ValueError("line_reserve must leave at least one market-data line")
        if not 0 < self.hist_max_open <= ib_limits.HIST_MAX_OPEN_REQUESTS:
            raise ValueError("hist_max_open must be within 1..50")

    @property
    def line_budget(self) -> int:
        return self.market_data_lines - self.line_reserve

    @property
    def worker_id(self) -> str:
        return f"gateway-{self.client_id}"

    def with_changes(self, **changes: Any) -> GatewayConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
