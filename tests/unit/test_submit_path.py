"""The whole submit path, property-tested: ``Client.submit`` from many threads (checked in the
client, coalesced, pickled as Ray ships arguments) → ``RequestQueue.submit_each`` (checked
again) → the queue core → the journal. Every caller gets its own id or ``InvalidRequest``,
nothing else; a rejected submission leaves nothing queued and nothing journaled."""

from __future__ import annotations

import asyncio
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ray import cloudpickle

from v6ray.client.api import Client
from v6ray.errors import InvalidRequest
from v6ray.queue.actor import RequestQueue
from v6ray.queue.memory_journal import MemoryJournals
from v6ray.requests.model import Status


class LocalQueueHandle:
    """Stands in for the queue actor's handle: arguments and answers are pickled as Ray
    pickles them, and every call runs on the queue's own event loop (its own thread)."""

    def __init__(self, queue: RequestQueue, loop: asyncio.AbstractEventLoop) -> None:
        self._queue = queue
        self._loop = loop

    def __getattr__(self, name: str) -> SimpleNamespace:
        method = getattr(self._queue, name)

        def remote(*args):
            shipped = pickle.loads(cloudpickle.dumps(args))
            return asyncio.run_coroutine_threadsafe(method(*shipped), self._loop)

        return SimpleNamespace(remote=remote)


def local_get(ref, timeout=None):
    return pickle.loads(cloudpickle.dumps(ref.result(timeout)))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One queue (own loop thread) and one client for every example of a test."""
    data_dir = str(tmp_path_factory.mktemp("submit-path"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    journals = MemoryJournals()  # the queue's logic is under test, not the Delta table
    queue = RequestQueue(data_dir, journal_factory=journals)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray, "get", local_get)
        client = Client(LocalQueueHandle(queue, loop))
        yield SimpleNamespace(queue=queue, client=client, acknowledged=set(),
                              journaled=lambda: journals.read_requests(data_dir))
    queue.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# Inputs that once escaped validation, beside ordinary garbage and valid values.
nasty = st.one_of(
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),
    st.sampled_from(["ﬀ", "ıwm", "TRADEſ", "1 wee\u212a", "２０２６１２",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
                     "2090-01-01T00:00:00Z", "1970-01-01T00:00:00Z", '{"a": 1, "a": 2}']),
    st.integers(min_value=50, max_value=3000).map(nested),
    st.builds(threading.Lock),  # cannot be pickled: must never reach the shared call
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                   nasty)
valid_parameters = st.sampled_from([
    {"request_type": "market_bars", "parameters": {"duration": "2 D", "bar_size": "1 hour"}},
    {"request_type": "market_bars", "parameters": {"end": "2025-03-06T20:00:00Z"}},
    {"request_type": "market_bars", "parameters": {"sec_type": "FUT", "contract_month": 202703}},
    {"request_type": "futures_snapshot", "parameters": {"contract_month": "202612"}},
    {"request_type": "option_chain", "parameters": {"dte": 30, "rights": "C"}},
    {"request_type": "position_update", "symbol": "*", "parameters": None},
])
symbols = st.one_of(st.sampled_from(["SPY", "ES", "QQQ", "NQ", "IWM"]), leaves)
parameter_values = st.one_of(
    leaves, st.sampled_from(["5 D", "1 hour", "ADJUSTED_LAST", "FUT", "202612", "both", 10]))
parameters = st.one_of(
    leaves,
    st.dictionaries(st.sampled_from(["duration", "bar_size", "what_to_show", "end", "sec_type",
                                     "contract_month", "dte", "rights", "account", "colour"]),
                    parameter_values, max_size=3),
)


@st.composite
def submissions(draw) -> dict:
    """Mostly valid submissions (so that most batches mix successes and failures)."""
    base = dict(draw(valid_parameters))
    base.setdefault("symbol", draw(st.sampled_from(["SPY", "ES", "QQQ", "NQ"])))
    if draw(st.integers(0, 2)) == 0:  # one field made bad (or odd)
        field = draw(st.sampled_from(["request_type", "symbol", "priority", "parameters",
                                      "result_table"]))
        base[field] = draw({"request_type": leaves, "symbol": symbols, "priority": leaves,
                            "parameters": parameters, "result_table": leaves}[field])
    return base


def submit(client: Client, item: dict):
    try:
        return client.submit(item.get("request_type"), item.get("symbol"),
                             priority=item.get("priority", 2),
                             parameters=item.get("parameters"),
                             result_table=item.get("result_table"))
    except Exception as exc:  # the property: only InvalidRequest may come back
        return exc


def assert_queued_is_acknowledged(service) -> None:
    live = {r.request_id for r in service.queue.core.live_requests()}
    assert live == service.acknowledged  # nothing queued for a caller told "failed"
    journaled = {r.request_id for r in service.journaled() if r.status is Status.PENDING}
    assert journaled == service.acknowledged  # and everything acknowledged is durable


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(submissions(), min_size=1, max_size=8))
def test_concurrent_submits_each_get_their_own_id_or_invalid_request(service, batch):
    with ThreadPoolExecutor(len(batch)) as pool:
        outcomes = list(pool.map(lambda item: submit(service.client, item), batch))
    for outcome in outcomes:
        assert isinstance(outcome, str | InvalidRequest), repr(outcome)
        if isinstance(outcome, InvalidRequest):
            assert outcome.field and not outcome.reason.startswith("could not be checked")
    service.acknowledged.update(o for o in outcomes if isinstance(o, str))
    assert_queued_is_acknowledged(service)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(submissions(), min_size=1, max_size=6))
def test_submit_many_is_all_or_nothing_for_any_input(service, batch):
    try:
        ids = service.client.submit_many(batch)
    except InvalidRequest as exc:
        assert exc.field.startswith("items")
    else:
        assert len(ids) == len(batch)
        service.acknowledged.update(ids)
    assert_queued_is_acknowledged(service)


def test_a_bad_item_amid_a_shared_call_fails_only_its_own_caller(service):
    """The cases found: each once failed the whole shared call, after queuing the items
    before it for callers who were told it failed."""
    bad_items = [
        {"request_type": "market_bars", "symbol": "SPY",
         "parameters": {"end": "0001-01-01T00:00:00+01:00"}},  # OverflowError
        {"request_type": "market_bars", "symbol": "SPY",
         "parameters": {"duration": nested(3000)}},  # RecursionError
        {"request_type": "position_update", "symbol": "*",
         "parameters": {"account": "\ud800"}},  # UnicodeEncodeError
    ]
    for bad in bad_items:
        good = [{"request_type": "futures_snapshot", "symbol": s} for s in ("ZB", "ZN")]
        outcomes = asyncio.run_coroutine_threadsafe(
            service.queue.submit_each([good[0], bad, good[1]]), service.client._queue._loop
        ).result(30)
        assert isinstance(outcomes[0], str) and isinstance(outcomes[2], str)
        assert isinstance(outcomes[1], InvalidRequest)
        service.acknowledged.update((outcomes[0], outcomes[2]))
        assert_queued_is_acknowledged(service)
