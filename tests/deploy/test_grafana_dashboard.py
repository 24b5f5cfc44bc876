"""deploy/grafana/shelfedge.json is a Grafana dashboard whose queries parse and name real series.

Grafana itself is not packaged for this machine: the test checks the dashboard model's basics
(uid, title, schemaVersion, panels with unique ids, a grid position, a Prometheus data source
and targets with unique refIds), that every `shelfedge*` name in a query is a metric a process
exports (read from the real registries) or a series rules.yml records, and that a real
Prometheus parses and evaluates every query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from edge.adapters.local_server import LocalEdge
from edge.config import EdgeConfig
from fragments.slots import load_slots
from invalidation.canary import CanaryMetrics
from invalidation.metrics import InvalidationMetrics
from origin.web.metrics import OriginMetrics
from tests.deploy.support import DASHBOARD, RULES
from tests.support.prometheus import PrometheusQueryError, PrometheusServer

_NAME = re.compile(r"\bshelfedge[a-z0-9_:]*")
_QUOTED = re.compile(r'"[^"]*"')


def _sample_names(registry: Any) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


async def _exported_names() -> set[str]:
    edge = LocalEdge(EdgeConfig.from_slots(load_slots(), "s" * 32), "http://127.0.0.1:9", True)
    try:
        return (
            _sample_names(OriginMetrics.create().registry)
            | _sample_names(InvalidationMetrics.create().registry)
            | _sample_names(CanaryMetrics.create().registry)
            | _sample_names(edge.registry)
        )
    finally:
        await edge.close()


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in _dashboard()["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target


def test_dashboard_has_the_grafana_model_basics() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "shelfedge-slo"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


async def test_every_query_names_exported_or_recorded_series() -> None:
    recorded = set(re.findall(r"- record: (\S+)", RULES.read_text()))
    known = await _exported_names() | recorded
    used: set[str] = set()
    for title, target in _targets():
        names = set(_NAME.findall(_QUOTED.sub('""', target["expr"])))
        assert names or "up{" in target["expr"], f"{title}: {target['expr']} names no series"
        assert names <= known, f"{title}: unknown series {sorted(names - known)}"
        used |= names
    # Every indicator of docs/operations.md has a panel.
    for indicator in (
        "shelfedge:origin_availability:ratio_rate5m",
        "shelfedge_origin_request_seconds_bucket",
        "shelfedge_event_to_purge_seconds_bucket",
        "shelfedge_canary_freshness_seconds_bucket",
        "shelfedge_consumer_lag",
        "shelfedge:dead_letter:ratio_rate10m",
        "shelfedge_edge_requests_total",
        "shelfedge_purge_failures_total",
        "shelfedge:purge_throttled:ratio_rate15m",
        "shelfedge:experiment_config:age_seconds",
        "shelfedge_edge_exposures_total",
    ):
        assert indicator in used, f"no panel shows {indicator}"


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    with PrometheusServer({}, [RULES]) as server:
        yield server


@pytest.mark.parametrize(
    ("title", "expr"), [(title, t["expr"]) for title, t in _targets()], ids=lambda v: str(v)[:40]
)
def test_every_query_parses_in_prometheus(
    prometheus: PrometheusServer, title: str, expr: str
) -> None:
    prometheus.query(expr)  # raises PrometheusQueryError, naming the error, if it does not parse


def test_a_malformed_query_is_refused(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusQueryError, match="parse"):
        prometheus.query("sum by (le (rate(shelfedge_origin_request_seconds_bucket[5m]))")
