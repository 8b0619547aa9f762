"""Where v6ray's actors run and how long they have: node, pid, restarts, uptime.

``actor_table`` asks Ray's state API (``ray.util.state``: the dashboard's, so a cluster
started without one answers nothing); ``merge`` and ``render_lines`` are pure.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

STATE_TIMEOUT = 10.0


def merge(actors: Iterable[Mapping[str, Any]], workers: Iterable[Mapping[str, Any]],
          node_addresses: Mapping[str, str], now: float) -> list[dict[str, Any]]:
    """One row per named actor: its state, node (address), pid, restarts and uptime.

    Uptime is that of the actor's current worker process (since its last restart).
    """
    started = {int(w["pid"]): w.get("start_time_ms") for w in workers if w.get("pid")}
    rows = []
    for actor in actors:
        if not actor.get("name"):
            continue
        pid = int(actor.get("pid") or 0)
        start_ms = started.get(pid) if pid else None
        node = actor.get("node_id") or ""
        rows.append({
            "name": actor["name"],
            "state": actor.get("state"),
            "node": node_addresses.get(node, node[:12]),
            "pid": pid or None,
            "restarts": int(actor.get("num_restarts") or 0),
            "uptime_seconds": round(max(0.0, now - start_ms / 1000), 1) if start_ms else None,
            "repr": actor.get("repr_name") or "",
        })
    return sorted(rows, key=lambda r: r["name"])


def actor_table(namespace: str) -> list[dict[str, Any]] | dict[str, str]:
    """The rows of ``merge`` for the live cluster; ``{"error": ...}`` when Ray cannot say."""
    import ray
    from ray.util.state import list_actors, list_workers

    try:
        address = ray.get_runtime_context().gcs_address
        common = dict(address=address, detail=True, raise_on_missing_output=False,
                      timeout=STATE_TIMEOUT)
        actors = list_actors(filters=[("ray_namespace", "=", namespace)], **common)
        workers = list_workers(filters=[("is_alive", "=", "True")], limit=10_000, **common)
        nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    except Exception as exc:  # no dashboard, a timeout: status still renders the rest
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return merge([_plain(a) for a in actors], [_plain(w) for w in workers], nodes, time.time())


def _plain(state: Any) -> dict[str, Any]:
    return dict(state) if isinstance(state, Mapping) else dict(vars(state))


def render_lines(table: Any) -> list[str]:
    """The `actors` section of `v6ray status`."""
    if isinstance(table, Mapping):
        return ["", "actors", f"  (not available: {table.get('error', '?')})"]
    out = ["", "actors"]
    for row in table:
        uptime = row.get("uptime_seconds")
        up = "-" if uptime is None else _duration(float(uptime))
        out.append(f"  {row['name']:<17}{row.get('state') or '-':<11}node {row.get('node') or '-'}"
                   f" · pid {row.get('pid') or '-'} · restarts {row.get('restarts', 0)}"
                   f" · up {up}")
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"
