"""Helpers for tests that need a simulator (here, so every test folder can import them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from v6ray.sim.config import SimConfig
from v6ray.sim.thread import SimulatorThread


@contextmanager
def running_simulator(**overrides: object) -> Iterator[SimulatorThread]:
    """A SimulatorThread on an ephemeral loopback port (seed 7 unless overridden)."""
    settings: dict[str, object] = {"seed": 7, "port": 0, "host": "127.0.0.1", **overrides}
    with SimulatorThread(SimConfig(**settings)) as sim:  # type: ignore[arg-type]
        yield sim
