"""IB Gateway simulator: the TWS socket protocol, a deterministic market, IB's limits.

    from v6ray.sim import SimConfig, Simulator, SimulatorThread

Nothing here imports ib_async: the protocol is implemented from its wire format.
"""

from v6ray.sim.config import SimConfig
from v6ray.sim.server import Simulator
from v6ray.sim.thread import SimulatorThread

__all__ = ["SimConfig", "Simulator", "SimulatorThread"]
