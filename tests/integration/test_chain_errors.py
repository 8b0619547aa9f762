"""A chain whose option snapshots fail ends with one readable error: which contract, which
IB code, how many others failed; never a TaskGroup's ExceptionGroup repr."""

from __future__ import annotations

import re

import pytest

from v6ray.gateway.testing import GatewayHarness
from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(180)


def test_failed_option_snapshots_name_the_contract_and_ibs_code(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.05) as h:
        # IB's 354 for IWM's options only (the underlying's own snapshot still answers).
        h.sim.inject_error("mktdata", 354, "Requested market data is not subscribed.",
                           count=3, symbol="IWM:OPT")
        [chain] = h.wait_all([h.submit("option_chain", "IWM",
                                       parameters={"dte": 30, "strikes": 3})], timeout=120)
    assert chain.status is Status.FAILED
    message = chain.error_message
    assert "ExceptionGroup" not in message and "TaskGroup" not in message
    # The first failure cancels the chain's other snapshots: one or more of them failed.
    # 12 = 3 strikes a side x 2 rights x 1 expiry.
    assert re.fullmatch(r"IB error 354: IWM \d{8} [\d.]+ [CP] option: Requested market data "
                        r"is not subscribed\.(; [12] more of 12 failed)?", message), message
    assert chain.attempts == 1  # 354 is final: no retry can fix a missing subscription
