"""Competing CPU load, for proving IB's limits hold under jitter (tests and benchmarks).

Limits break where timing is late: a gateway whose event loop was preempted, a receiver
that reads a second's worth of messages at once. ``cpu_load()`` makes that happen on
purpose: processes spinning on every core plus loops that keep starting short-lived
interpreters (the fork/exec/import churn of a busy workstation), all at normal priority.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_load(spinners: int | None = None, spawners: int = 2) -> Iterator[list[int]]:
    """Run the load for the block (pids yielded); every process is killed afterwards."""
    spin = [sys.executable, "-c", "while True: pass"]
    spawn = ["bash", "-c", f"while :; do '{sys.executable}' -c 'import json, decimal'; done"]
    commands = [spin] * (spinners if spinners is not None else os.cpu_count() or 2)
    commands += [spawn] * spawners
    procs = [subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for cmd in commands]
    try:
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:  # each leads its own session: its children go with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
