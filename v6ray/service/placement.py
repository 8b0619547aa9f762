"""Where v6ray's work may run on a Ray cluster: the rules `up` and `status` apply.

Pure: every function takes the node list (``ray.nodes()``'s shape: ``Alive``,
``Resources``, ``NodeID``) and the data root, and decides; no Ray call here.

- The gateway runs on the one node advertising ``v6ray_gateway`` (when any does); when
  that node is gone, Ray keeps the restarting actor pending until a node with the resource
  joins, and ``status`` says so instead of "unreachable".
- Writer and derive tasks run on any node. Derive tasks go out many at once and Ray's
  ``SPREAD`` places them; the gateway's writer tasks go out one commit per table at a
  time, and Ray reuses a worker it has leased for the next task of the same kind, so
  ``SPREAD`` alone would keep them on one node: ``WriterRotation`` sends each commit to
  the next node with CPU (soft affinity: a busy or lost node's commit runs elsewhere).
  That is only safe when every node sees the same tables: a local folder on a multi-node
  cluster would give each node its own copy, and the head would never see rows written
  elsewhere. `up` refuses that with one line naming the fix, rather than pinning every
  writer to the head (which would make the head the only node doing I/O, defeating the
  point of a cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from v6ray.constants import GATEWAY_NODE_RESOURCE
from v6ray.errors import SplitDataRoot
from v6ray.storage.location import DataRoot

Node = Mapping[str, Any]
GATEWAY_WAITING = f"waiting for a node with {GATEWAY_NODE_RESOURCE}"


def alive(nodes: Iterable[Node]) -> list[Node]:
    return [node for node in nodes if node.get("Alive")]


def has_gateway_resource(node: Node) -> bool:
    return bool((node.get("Resources") or {}).get(GATEWAY_NODE_RESOURCE))


def check_shared_data_root(data_dir: str, nodes: Iterable[Node]) -> None:
    """Raise ``SplitDataRoot`` when ``data_dir`` is a local folder and more than one node
    is alive: writer tasks spread over the nodes would split the tables between disks."""
    root = DataRoot.parse(data_dir)
    count = len(alive(nodes))
    if root.is_local and count > 1:
        raise SplitDataRoot(
            f"data dir {root.uri} is a local folder but the Ray cluster has {count} nodes: "
            "writer tasks on other nodes would write to their own disks; use shared storage "
            "every node reaches, e.g. --data-dir s3://bucket/prefix"
        )


def gateway_waiting(nodes: Iterable[Node]) -> bool:
    """The gateway's node is gone: no live node advertises ``v6ray_gateway``, and one did
    (or a node died; Ray may list a dead node without its resources). Ray restarts the
    gateway only when a node with the resource joins. Ask only once the gateway does not
    answer: an unpinned gateway (one machine) runs anywhere."""
    nodes = list(nodes)
    if any(has_gateway_resource(node) for node in alive(nodes)):
        return False
    dead = [node for node in nodes if not node.get("Alive")]
    return any(has_gateway_resource(node) for node in nodes) or bool(dead)


def writer_node_ids(nodes: Iterable[Node]) -> list[str]:
    """Live nodes a writer task can run on (some CPU), in a stable order."""
    return sorted(
        node["NodeID"] for node in alive(nodes) if (node.get("Resources") or {}).get("CPU", 0) > 0
    )


class WriterRotation:
    """Round-robin over the nodes with CPU, for the gateway's writer tasks.

    ``fetch_nodes`` (``ray.nodes`` in the gateway, a list in tests) is called at most once
    per ``refresh_seconds``; between refreshes a node that joined is not used yet and a
    node that died still gets its turn (its commit runs elsewhere: the affinity is soft).
    """

    def __init__(self, fetch_nodes: Callable[[], Iterable[Node]], refresh_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch_nodes
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._nodes: list[str] = []
        self._fetched_at: float | None = None
        self._turn = 0

    @property
    def never_fetched(self) -> bool:
        return self._fetched_at is None

    @property
    def stale(self) -> bool:
        return self._fetched_at is None or (
            self._clock() - self._fetched_at >= self._refresh_seconds
        )

    def refresh(self) -> None:
        """Read the node list now (blocking). A failed read counts as one: it is retried
        after ``refresh_seconds``, not at every commit."""
        self._fetched_at = self._clock()
        self._nodes = writer_node_ids(self._fetch())

    def next_node(self) -> str | None:
        """The node for the next commit; None while no node is known (Ray places it)."""
        if not self._nodes:
            return None
        node = self._nodes[self._turn % len(self._nodes)]
        self._turn += 1
        return node
