"""Helpers for tests that need a simulator (here, so every test folder can import them)."""

from __future__ import annotations

import re
import subprocess
import sys
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


def start_simulator_process(*options: str) -> tuple[subprocess.Popen, int]:
    """``python -m v6ray.sim`` in a process of its own (as IB Gateway is), seed 7, on an
    ephemeral loopback port; ``options`` are more ``v6ray sim`` flags. The caller stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6ray.sim", "--host", "127.0.0.1", "--port", "0",
         "--seed", "7", *options],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "IB simulator listening on 127.0.0.1:PORT (...)"
    match = re.search(r":(\d+) ", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(match.group(1))
