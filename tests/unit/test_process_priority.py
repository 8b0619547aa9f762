"""The IB-facing processes leave Ray's lowered CPU priority where the OS allows it."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
import os
from v6ray.service.process_priority import run_at_normal_priority
first = run_at_normal_priority("IBGateway")
print(first, run_at_normal_priority("IBGateway"), os.getpriority(os.PRIO_PROCESS, 0))
"""


def test_a_niced_worker_returns_to_normal_priority_or_says_why_not():
    done = subprocess.run(["nice", "-n", "15", sys.executable, "-c", CODE],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if os.geteuid() == 0:  # privileged, as Ray's workers are in this project's CI
        assert done.stdout.split() == ["True", "True", "0"]
    else:  # no privilege: the niceness stays, one warning names the consequence
        assert done.stdout.split() == ["False", "False", "15"]
        assert done.stderr.count("keeps Ray's lowered CPU priority") == 1
