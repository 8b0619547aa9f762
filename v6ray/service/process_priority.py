"""Run a latency-critical actor at normal CPU priority.

Ray starts its worker processes "niced" (``RAY_worker_niceness``, 15 by default), so any
ordinary load on the machine preempts them. For a writer task that only costs time; for
the one process that holds the IB connection it costs timing: its messages leave late and
its answers are read late. The message rate itself stays safe either way (the gateway
paces every write measured at the actual write, see ``v6ray.pacing.windows.WireRate``),
but a starved gateway wastes its budget, and a starved simulator reads a second's worth of
messages in one gulp, which no real IB Gateway (its own process) would do.

The queue actor, the writer tasks and the simulator ask too: a request is done only when
the queue has claimed it and a writer has committed its rows, so a starved queue or writer
leaves the gateway with nothing ready to send.

Lowering a niceness needs privilege (root, or ``CAP_SYS_NICE`` / ``RLIMIT_NICE``): without
it the process keeps Ray's priority and says so once in its log.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

NORMAL = 0
_tried: dict[int, bool] = {}  # pid -> outcome: a pooled worker asks once, warns once


def run_at_normal_priority(who: str) -> bool:
    """Set this process's niceness to 0; True if it now runs at (or above) normal."""
    pid = os.getpid()
    if pid not in _tried:
        _tried[pid] = _renice(who)
    return _tried[pid]


def _renice(who: str) -> bool:
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current <= NORMAL:
            return True
        os.setpriority(os.PRIO_PROCESS, 0, NORMAL)
    except (AttributeError, OSError) as exc:  # no privilege, or no such call on this OS
        log.warning("%s keeps Ray's lowered CPU priority (%s): under CPU load its IB "
                    "traffic may be delayed", who, exc)
        return False
    log.info("%s runs at normal CPU priority (was nice %d)", who, current)
    return True
