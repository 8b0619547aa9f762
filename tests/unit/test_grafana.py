"""grafana/v6ray.json queries only metrics v6ray exports, and shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from v6ray.observability.catalog import METRICS, exported_names

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "v6ray.json"
SERIES = re.compile(r"\bray_v6ray_\w+")


def panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_every_panel_queries_metrics_that_v6ray_exports():
    exported = exported_names()
    assert panels()
    for panel in panels():
        exprs = [t["expr"] for t in panel["targets"]]
        assert exprs, panel["title"]
        for expr in exprs:
            named = SERIES.findall(expr)
            assert named, f"{panel['title']}: {expr} names no v6ray metric"
            unknown = set(named) - exported
            assert not unknown, f"{panel['title']}: {sorted(unknown)} are not exported"
            assert expr.count("(") == expr.count(")"), expr


def test_every_exported_metric_has_a_panel():
    shown = {name for panel in panels() for t in panel["targets"]
             for name in SERIES.findall(t["expr"])}
    for spec in METRICS.values():
        assert set(spec.exported) & shown, f"{spec.name} is on no panel"


def test_panels_use_the_dashboards_prometheus_variable_and_do_not_overlap():
    seen = set()
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}"
        pos = panel["gridPos"]
        cell = (pos["x"], pos["y"])
        assert cell not in seen, panel["title"]
        seen.add(cell)
