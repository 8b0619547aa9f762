"""``v6ray.connect()``: the producers' handle on the running queue (CLI, scripts, notebooks).

Errors raised inside the queue actor reach callers as the original v6ray exception (Ray's
``RayTaskError`` wrapper is removed), so ``except v6ray.InvalidRequest`` works.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from v6ray.client.coalescer import SubmitCoalescer
from v6ray.constants import GATEWAY_ACTOR, NAMESPACE, QUEUE_ACTOR
from v6ray.errors import NotRunning, RequestTimeout
from v6ray.requests.model import IBRequest, Priority, new_request, requests_from_submissions
from v6ray.service import cluster, placement
from v6ray.service.settings import Settings
from v6ray.service.state import ServiceState

# One actor-side wait lasts at most this long, so a long wait spans queue restarts.
WAIT_CHUNK_SECONDS = 10.0
# While the queue actor restarts, calls fail fast with RayActorError; retry for this long.
RESTART_GRACE_SECONDS = 60.0
GATEWAY_STATS_TIMEOUT = 5.0


def connect(
    address: str = "auto", *, namespace: str = NAMESPACE, data_dir: str | None = None
) -> Client:
    """Attach to the running v6ray service; ``NotRunning`` if there is no cluster or queue.

    With ``address="auto"`` (and no ``RAY_ADDRESS``), the cluster `v6ray up` recorded in the
    data dir (``data_dir``, else ``V6RAY_DATA_DIR``, else ./v6ray-data) is joined, with the
    loopback and auth settings it was started with; otherwise Ray's own "auto" applies.
    A host:port address (given, or in ``RAY_ADDRESS``) is checked first and joined as is.
    """
    joined_here = not ray.is_initialized()
    if joined_here:
        _join(address, namespace, data_dir)
    try:
        handle = ray.get_actor(QUEUE_ACTOR, namespace=namespace)
    except ValueError:
        if joined_here:  # not the service's cluster: let a later connect() look again
            ray.shutdown()
        raise NotRunning(f"no {QUEUE_ACTOR} actor in Ray namespace {namespace!r}") from None
    return Client(handle, namespace=namespace)


def _join(address: str, namespace: str, data_dir: str | None) -> None:
    target = (os.environ.get("RAY_ADDRESS") or address) if address == "auto" else address
    state = ServiceState.load(Settings.from_env(data_dir=data_dir).data_path)
    if target == "auto" and state is not None and state.cluster_alive():
        target = state.ray_address
    # cluster.connect, never ray.init(target): it keeps a loopback address loopback and
    # answers in seconds when nothing listens there (see its docstring).
    same = state is not None and state.ray_address == target
    cluster.connect(target, namespace=namespace, auth_mode=state.auth_mode if same else None,
                    ray_resolves=True)


def original_error(exc: RayTaskError) -> BaseException:
    """The exception raised inside a Ray task or actor, without Ray's wrapper."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class Client:
    """Submit, follow and cancel requests through the queue actor."""

    def __init__(self, queue_handle: Any, namespace: str = NAMESPACE) -> None:
        self._queue = queue_handle
        self.namespace = namespace
        # Concurrent submits of this process share one queue call and one journal commit.
        self._submits = SubmitCoalescer(lambda items: self._call("submit_each", items))

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + RESTART_GRACE_SECONDS
        while True:
            try:
                return ray.get(getattr(self._queue, method).remote(*args), timeout=timeout)
            except RayTaskError as exc:
                raise original_error(exc) from None
            except RayActorError as exc:  # restarting (max_restarts=-1) or gone for good
                if time.monotonic() > deadline:
                    raise NotRunning(f"the {QUEUE_ACTOR} actor is unavailable ({exc})") from None
                time.sleep(0.2)

    def submit(
        self,
        request_type: str,
        symbol: str,
        priority: int | Priority = Priority.NORMAL,
        parameters: dict[str, Any] | str | None = None,
        result_table: str | None = None,
    ) -> str:
        """Queue one request; returns its id once it is durable. ``InvalidRequest`` if bad.

        Thread-safe: submits made at the same time from several threads go to the queue
        together (see ``v6ray.client.coalescer``); each still gets its own id or error.
        The submission is checked here first, so a bad one fails only its own caller and
        never reaches the shared call (the queue checks it again); what is sent holds plain
        values only, which Ray can always ship.
        """
        request = new_request(
            request_type, symbol, priority=priority, parameters=parameters,
            result_table=result_table,
        )
        return self._submits.submit(request.as_submission())

    def submit_many(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """Queue many requests at once, all or nothing; ids in the order of ``items``.

        At most ``v6ray.requests.model.MAX_SUBMIT_MANY`` items per call; ``InvalidRequest`` naming
        the first bad item (``items[3].symbol``), checked here before anything is sent.
        """
        requests = requests_from_submissions(_as_list(items))
        return self._call("submit_many", [request.as_submission() for request in requests])

    def get(self, request_id: str) -> IBRequest | None:
        return self._call("get", request_id)

    def wait(self, request_id: str, timeout: float = 60) -> IBRequest:
        """The final request (SUCCESS, FAILED or CANCELLED); ``RequestTimeout`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(request_id, timeout)
            chunk = min(remaining, WAIT_CHUNK_SECONDS)
            try:
                return self._call("wait", request_id, chunk, timeout=chunk + RESTART_GRACE_SECONDS)
            except (RequestTimeout, GetTimeoutError):
                continue

    def cancel(self, request_id: str) -> bool:
        """True if the request was still PENDING and is now CANCELLED."""
        return self._call("cancel", request_id)

    def stats(self) -> dict[str, Any]:
        """{"queue": the queue's stats, "gateway": the IBGateway's stats or its state}."""
        return {"queue": self._call("stats"), "gateway": self._gateway_stats()}

    def _gateway_stats(self) -> dict[str, Any]:
        try:
            gateway = ray.get_actor(GATEWAY_ACTOR, namespace=self.namespace)
        except ValueError:
            return {"state": "not running"}
        try:
            return ray.get(gateway.stats.remote(), timeout=GATEWAY_STATS_TIMEOUT)
        except RayTaskError as exc:
            return {"state": "error", "error": str(original_error(exc))}
        except (RayActorError, GetTimeoutError) as exc:
            if placement.gateway_waiting(ray.nodes()):
                # Ray restarts it only once a node with the resource joins: say so.
                return {"state": placement.GATEWAY_WAITING}
            return {"state": "unreachable", "error": str(exc)}


def _as_list(items: Any) -> Any:
    """Any iterable of items as a list; anything else as is (for the error it gets)."""
    if isinstance(items, Iterable) and not isinstance(items, str | bytes | Mapping):
        return list(items)
    return items
