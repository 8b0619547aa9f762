"""Concurrent submits of one process share queue calls; each caller keeps its own outcome."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import wait_for
from v6ray.client.coalescer import SubmitCoalescer
from v6ray.errors import InvalidRequest, NotRunning


class SlowQueue:
    """Answers each batch after ``delay`` s: an id per item, or the error a bad one raises."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.batches: list[list[dict]] = []
        self.fail_next_call: Exception | None = None
        self._lock = threading.Lock()

    def send(self, items: list[dict]) -> list:
        with self._lock:
            self.batches.append(items)
        time.sleep(self.delay)
        if self.fail_next_call is not None:
            error, self.fail_next_call = self.fail_next_call, None
            raise error
        return [InvalidRequest("symbol", "is required") if not item.get("symbol")
                else f"id-{item['symbol']}" for item in items]


def submit_all(coalescer: SubmitCoalescer, symbols: list[str], threads: int = 64) -> list:
    def one(symbol: str):
        try:
            return coalescer.submit({"request_type": "futures_snapshot", "symbol": symbol})
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, symbols))


def test_an_idle_client_sends_each_submit_at_once():
    queue = SlowQueue(delay=0)
    coalescer = SubmitCoalescer(queue.send)
    assert coalescer.submit({"request_type": "futures_snapshot", "symbol": "ES"}) == "id-ES"
    assert coalescer.submit({"request_type": "futures_snapshot", "symbol": "NQ"}) == "id-NQ"
    assert [len(b) for b in queue.batches] == [1, 1]


def test_concurrent_submits_share_calls_and_each_gets_its_own_id():
    queue = SlowQueue(delay=0.02)
    coalescer = SubmitCoalescer(queue.send)
    symbols = [f"S{i}" for i in range(400)]
    assert submit_all(coalescer, symbols) == [f"id-{s}" for s in symbols]
    assert sum(map(len, queue.batches)) == 400  # every submit sent exactly once
    assert len(queue.batches) <= 400 / 8  # while one call is out, the next batch gathers
    assert coalescer.calls == len(queue.batches)


def test_a_bad_submit_fails_only_its_caller():
    queue = SlowQueue()
    coalescer = SubmitCoalescer(queue.send)
    outcomes = submit_all(coalescer, [f"S{i}" if i % 10 else "" for i in range(100)])
    bad = [o for o in outcomes if isinstance(o, Exception)]
    assert len(bad) == 10 and all(isinstance(e, InvalidRequest) and e.field == "symbol"
                                  for e in bad)
    assert [o for o in outcomes if isinstance(o, str)] == [f"id-S{i}" for i in range(100) if i % 10]


def test_a_failed_call_reaches_every_caller_of_its_batch_and_the_next_batch_works():
    queue = SlowQueue(delay=0.05)
    queue.fail_next_call = NotRunning("the RequestQueue actor is unavailable")
    coalescer = SubmitCoalescer(queue.send)
    outcomes = submit_all(coalescer, [f"S{i}" for i in range(50)], threads=50)
    failed = sum(1 for o in outcomes if isinstance(o, NotRunning))
    assert failed == len(queue.batches[0]) >= 1
    assert sum(1 for o in outcomes if isinstance(o, str)) == 50 - failed
    assert coalescer.submit({"request_type": "futures_snapshot", "symbol": "ES"}) == "id-ES"


def test_batches_are_capped_and_a_short_answer_is_an_error():
    queue = SlowQueue(delay=0.05)
    coalescer = SubmitCoalescer(queue.send, max_batch=7)
    assert len(submit_all(coalescer, [f"S{i}" for i in range(60)])) == 60
    assert max(map(len, queue.batches)) <= 7

    broken = SubmitCoalescer(lambda items: [])
    with pytest.raises(RuntimeError, match="answered 0 of 1"):
        broken.submit({"request_type": "futures_snapshot", "symbol": "ES"})


def test_the_sender_thread_exits_when_idle_and_restarts_on_demand(monkeypatch):
    from v6ray.client import coalescer as submit_coalescer

    monkeypatch.setattr(submit_coalescer, "IDLE_EXIT_SECONDS", 0.05)
    coalescer = SubmitCoalescer(SlowQueue(delay=0).send)
    assert coalescer.submit({"request_type": "futures_snapshot", "symbol": "ES"}) == "id-ES"
    wait_for(lambda: coalescer._sender is None, 5, "the idle sender to exit", interval=0.01)
    assert coalescer.submit({"request_type": "futures_snapshot", "symbol": "NQ"}) == "id-NQ"
