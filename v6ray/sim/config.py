"""SimConfig: every knob of the simulator in one frozen dataclass.

Defaults are IB's published limits (from ``v6ray.pacing.ib_limits``) and latencies close to
what a paper-trading IB Gateway shows. ``time_scale`` multiplies every IB time window
(message rate window, historical pacing windows) and every latency, so a test can
check the 10-minute rule in seconds with ``time_scale=0.01``. Explicit fault durations
(``refuse_connections(seconds)``, ``nightly_restart(down_seconds)``) are taken as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from v6ray.pacing import ib_limits


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 0  # 0: an ephemeral port, read it back from Simulator.port
    seed: int = 0
    time_scale: float = 1.0
    limits: bool = True  # False turns every IB limit off (lines, rates, pacing, 322)
    market_data_lines: int = ib_limits.DEFAULT_MARKET_DATA_LINES
    account: str = "DU1234567"  # a paper account id, as IB's paper gateway reports

    # --- limits (IB's numbers; windows in unscaled seconds) --------------------------
    max_messages_per_second: int = ib_limits.MAX_MESSAGES_PER_SECOND
    message_breaches_before_disconnect: int = ib_limits.MESSAGE_BREACHES_BEFORE_DISCONNECT
    hist_max_open: int = ib_limits.HIST_MAX_OPEN_REQUESTS
    hist_small_bar_requests: int = ib_limits.HIST_SMALL_BAR_REQUESTS_PER_WINDOW
    hist_small_bar_window: float = ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS
    hist_identical_window: float = ib_limits.HIST_IDENTICAL_WINDOW_SECONDS
    hist_same_contract_window: float = ib_limits.HIST_SAME_CONTRACT_WINDOW_SECONDS
    hist_same_contract_max: int = ib_limits.HIST_SAME_CONTRACT_MAX

    # --- latencies (unscaled seconds) ------------------------------------------------
    snapshot_latency: float = 0.2  # reqMktData snapshot until tickSnapshotEnd
    stream_first_tick_latency: float = 0.05  # streaming reqMktData until first ticks
    historical_latency: float = 0.3  # fixed part of a reqHistoricalData answer
    historical_per_bar_latency: float = 0.0005  # plus this per bar (1 Y daily ~ 0.13 s more)
    contract_details_latency: float = 0.02
    # Streaming updates come this often; not an IB window, so time_scale leaves it alone.
    stream_interval: float = 0.25

    stats_file: str | None = None  # JSON counters, rewritten atomically every stats_interval
    stats_interval: float = 0.5

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale!r}")
        if self.market_data_lines < 1:
            raise ValueError(f"market_data_lines must be >= 1, got {self.market_data_lines!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port!r}")
        if self.stream_interval <= 0 or self.stats_interval <= 0:
            raise ValueError("stream_interval and stats_interval must be > 0")

    def scaled(self, seconds: float) -> float:
        """An IB window or latency in this simulator's time."""
        return seconds * self.time_scale
