"""Rendering ``Client.stats()`` for people (text, one live line) and programs (JSON).

Pure: takes the stats dict, returns text. Missing keys render as "-" so a gateway that
is not running, or a stats dict from a newer/older version, never breaks ``v6ray status``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

STATUS_ORDER = ("PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED")
MAX_FAILURES_SHOWN = 5
_PRIORITY_NAMES = {"1": "IMMEDIATE", "2": "NORMAL", "3": "BACKGROUND"}


def to_json(stats: Mapping[str, Any], service: Mapping[str, Any] | None = None) -> str:
    payload = {"service": dict(service or {}), **stats}
    return json.dumps(payload, indent=2, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def one_line(stats: Mapping[str, Any]) -> str:
    """The live status line of a foreground `v6ray up`."""
    queue, gateway = stats.get("queue") or {}, stats.get("gateway") or {}
    depth = queue.get("depth") or {}
    lines = f"{_get(gateway, 'lines_in_use')}/{_get(gateway, 'line_budget')}"
    restarted = [f"{_label(name)} {task['restarts']}×"
                 for name, task in _tasks(gateway).items() if task.get("restarts")]
    return (
        f"queue {depth.get('PENDING', 0)} pending · in flight {_get(queue, 'in_flight')}"
        f" · IB {_get(gateway, 'state')} (circuit {_get(gateway, 'circuit')})"
        f" · lines {lines} · ok {depth.get('SUCCESS', 0)} · failed {depth.get('FAILED', 0)}"
        + (" · restarted " + ", ".join(restarted) if restarted else "")
    )


def to_text(stats: Mapping[str, Any], service: Mapping[str, Any] | None = None) -> str:
    queue, gateway = stats.get("queue") or {}, stats.get("gateway") or {}
    out: list[str] = []
    if service:
        mode = "SIMULATED" if service.get("simulate") else "live IB"
        out.append(
            f"service   {mode} · Ray {service.get('ray_address', '-')}"
            f" · data {service.get('results_dir', '-')}"
        )
        if service.get("dashboard_url"):
            out.append(f"dashboard {service['dashboard_url']}")
        if service.get("monitor_url"):
            out.append(f"monitor   {service['monitor_url']}")
    out.append("")
    out.append("queue")
    out.append("  depth       " + _counts(queue.get("depth") or {}))
    out.append(
        f"  in flight   {_get(queue, 'in_flight')}"
        f" · oldest pending {_age(queue.get('oldest_pending_age_s'))}"
        f" · submitted {_get(queue, 'submitted_total')}"
        f" · coalesced {_get(queue, 'coalesced_total')}"
    )
    out.extend(_table("  by type", queue.get("by_type") or {}))
    by_priority = {
        f"{key} {_PRIORITY_NAMES.get(str(key), '')}".strip(): counts
        for key, counts in (queue.get("by_priority") or {}).items()
    }
    out.extend(_table("  by priority", by_priority))
    out.append("")
    out.append("gateway")
    out.append(
        f"  connection  {_get(gateway, 'state')} · circuit {_get(gateway, 'circuit')}"
        f" · in flight {_get(gateway, 'in_flight')}"
    )
    out.append(
        f"  lines       {_get(gateway, 'lines_in_use')} in use of {_get(gateway, 'line_budget')}"
    )
    pacing = gateway.get("pacing")
    if isinstance(pacing, Mapping) and pacing:
        out.append("  pacing      " + _flat(pacing))
    errors = gateway.get("ib_errors")
    out.append("  IB errors   " + (_flat(errors) if errors else "none"))
    counters = gateway.get("counters")
    if isinstance(counters, Mapping) and "writer_commits" in counters:
        # Conflicts: commits a writer task retried because another writer (any node)
        # committed to the same table first; retried, never lost.
        out.append(
            f"  writers     {_get(counters, 'writer_commits')} commits"
            f" · {_get(counters, 'rows_written')} rows"
            f" · {_get(counters, 'writer_conflicts')} conflicts retried"
            + _writer_nodes(counters.get("writer_commits_by_node"))
        )
    if gateway.get("last_error"):
        out.append(f"  last error  {_short(gateway['last_error'])}")
    out.extend(_task_lines(gateway))
    if gateway.get("error"):
        out.append(f"  stats error {_short(gateway['error'])}")
    simulator = stats.get("simulator")
    if isinstance(simulator, Mapping):
        out.extend(_simulator_lines(simulator))
    if "actors" in stats:
        from v6ray.observability.actors import render_lines

        out.extend(render_lines(stats["actors"]))
    failures = list(queue.get("recent_failures") or [])
    out.append("")
    out.append(f"recent failures ({len(failures)})" if failures else "recent failures: none")
    for failure in failures[-MAX_FAILURES_SHOWN:]:
        out.append("  " + _failure(failure))
    return "\n".join(out).lstrip("\n")


def _tasks(gateway: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tasks = gateway.get("tasks")
    if not isinstance(tasks, Mapping):
        return {}
    return {str(name): task for name, task in tasks.items() if isinstance(task, Mapping)}


def _label(name: str) -> str:
    return name.replace("_", " ")


def _task_lines(gateway: Mapping[str, Any]) -> list[str]:
    """The gateway's supervised loops: one line for the healthy ones, one per loop that
    ever died ("claim loop restarted 3×, last error …")."""
    tasks = _tasks(gateway)
    if not tasks:
        return []
    healthy, troubled = [], []
    for name in sorted(tasks):
        task = tasks[name]
        state = str(task.get("state", "-"))
        if not task.get("restarts"):
            healthy.append(f"{_label(name)} {state}")
            continue
        line = f"{_label(name)} restarted {task['restarts']}×"
        if state != "running":
            line += f", now {state}"
        if task.get("last_error"):
            line += f", last error {task['last_error']}"
        troubled.append(_short(line))
    lines = troubled + ([" · ".join(healthy)] if healthy else [])
    return [f"  {'tasks' if i == 0 else '':<12}{line}" for i, line in enumerate(lines)]


def _simulator_lines(simulator: Mapping[str, Any]) -> list[str]:
    """What the simulated IB Gateway counted: the proof that no IB limit was broken."""
    title = ["", "simulator (SIMULATED IB Gateway)"]
    if simulator.get("error"):
        return [*title, f"  stats error {_short(simulator['error'])}"]
    connections = simulator.get("connections") or {}
    lines = simulator.get("market_data_lines") or {}
    violations = simulator.get("violations") or {}
    messages = simulator.get("messages") or {}
    return [
        *title,
        f"  connections {_get(connections, 'active')} active · {_get(connections, 'total')} total"
        f" · messages {_get(messages, 'total')}"
        f" · peak {_get(messages, 'peak_per_window')} in any {_get(messages, 'window_seconds')} s",
        f"  lines       {_get(lines, 'in_use')} in use · peak {_get(lines, 'peak')}"
        f" of {_get(lines, 'capacity')}",
        "  violations  " + (_flat(violations) if violations else "none"),
    ]


def _counts(counts: Mapping[str, Any]) -> str:
    keys = [k for k in STATUS_ORDER if k in counts] + sorted(set(counts) - set(STATUS_ORDER))
    return " · ".join(f"{k} {counts[k]}" for k in keys) or "-"


def _table(title: str, rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    busy = {name: counts for name, counts in rows.items() if any((counts or {}).values())}
    if not busy:
        return [f"{title:<14}-"]
    lines = [title]
    for name in sorted(busy):
        nonzero = {k: v for k, v in busy[name].items() if v}
        lines.append(f"    {name:<18}{_counts(nonzero)}")
    return lines


def _writer_nodes(by_node: object) -> str:
    """The " · on N nodes" suffix, once commits went to more than one node (a cluster)."""
    if isinstance(by_node, Mapping) and len(by_node) > 1:
        return f" · on {len(by_node)} nodes"
    return ""


def _flat(mapping: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(mapping, key=str):
        value = mapping[key]
        if isinstance(value, Mapping):
            value = "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) + "}"
        parts.append(f"{key}={_scalar(value)}")
    return " · ".join(parts)


def _failure(failure: Any) -> str:
    if isinstance(failure, Mapping):
        ident = failure.get("request_id", "?")
        what = " ".join(str(failure[k]) for k in ("request_type", "symbol") if failure.get(k))
        error = failure.get("error_message") or failure.get("error") or ""
        return _short(f"{ident} {what}: {error}".strip())
    return _short(str(failure))


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _get(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    return "-" if value is None else _scalar(value)


def _age(seconds: Any) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def _short(text: Any, width: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"
