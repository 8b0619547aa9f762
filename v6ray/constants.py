"""Names every part of v6ray agrees on: Ray namespace, actor names, table names, tunables.

Tunables carry a comment where the value is not obvious.
"""

from __future__ import annotations

NAMESPACE = "v6ray"

QUEUE_ACTOR = "RequestQueue"
GATEWAY_ACTOR = "IBGateway"
SCHEDULER_ACTOR = "UnifiedScheduler"
SIMULATOR_ACTOR = "IBSimulator"
MONITOR_ACTOR = "V6RayMonitor"

# The monitor page `v6ray up` serves (127.0.0.1 unless told otherwise); next to Ray's 8265.
DEFAULT_MONITOR_PORT = 8266

# Custom Ray resource a node advertises to host the gateway (see cluster.yaml).
GATEWAY_NODE_RESOURCE = "v6ray_gateway"

REQUESTS_TABLE = "ib_requests"
# Finished requests older than the queue's retention window, moved out of ``ib_requests``
# so that a restart reads only recent ones; ``read_table("ib_requests")`` reads both.
REQUESTS_ARCHIVE_TABLE = "ib_requests_archive"
OPTION_SNAPSHOTS_TABLE = "option_snapshots"
FUTURES_SNAPSHOTS_TABLE = "futures_snapshots"
MARKET_BARS_TABLE = "market_bars"
POSITIONS_TABLE = "positions"
DERIVED_STATISTICS_TABLE = "derived_statistics"

DEFAULT_DATA_DIR = "./v6ray-data"
# Simulated data is kept apart from real data so a newcomer's experiment never mixes in.
SIMULATED_DATA_SUBDIR = "simulated"

DEFAULT_IB_HOST = "127.0.0.1"
DEFAULT_IB_PORT = 4002  # IB Gateway paper-trading port
DEFAULT_CLIENT_ID = 17

# Largest parameters payload accepted at submit time; bigger is a mistake, not a request.
MAX_PARAMETERS_BYTES = 16 * 1024
MAX_SYMBOL_LENGTH = 32
