"""The alerts and the dashboard use metric and label names that the code exports.

Exported names are collected from the metric objects the modules create (the model
server's, the MonitorPolicy metrics, and the operator's own in `kadence.metrics`), expanded
the way Prometheus exposes them (`_total` for counters, `_bucket/_count/_sum` for histograms).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass

import promql_parser
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from kadence.domain.monitoring.metrics import MonitorMetrics
from kadence.serving.metrics import ServerMetrics

from .helm import CHART, PROMETHEUS_OPERATOR, objects, render
from .test_render import by_kind

# Labels Prometheus attaches to every scraped series (ServiceMonitor/PodMonitor targets).
TARGET_LABELS = {"namespace", "pod", "job", "instance", "service", "container", "endpoint"}
BUILT_IN = {"up": set()}
OPERATOR_MODULE = "kadence.metrics"
# Names the operator process exports itself (reconcile loop, canary decisions), as opposed to
# the model server and the MonitorPolicy metrics that exist already.
OPERATOR_PREFIXES = ("kadence_operator_", "kadence_canary_")
NAME = re.compile(r"\b(kadence_[a-z0-9_]+|up)\b")


@dataclass(frozen=True)
class Query:
    where: str
    expr: str
    legend: str = ""


def exposed(metric: MetricWrapperBase) -> dict[str, set[str]]:
    name, labels = metric._name, set(metric._labelnames)
    kind = metric._type
    if kind == "counter":
        return {f"{name}_total": labels, f"{name}_created": labels}
    if kind == "histogram":
        return {f"{name}_bucket": labels | {"le"}, f"{name}_count": labels, f"{name}_sum": labels}
    if kind == "summary":
        return {f"{name}_count": labels, f"{name}_sum": labels}
    if kind == "info":
        return {f"{name}_info": labels}
    return {name: labels}


def metrics_of(owner) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for value in vars(owner).values():
        if isinstance(value, MetricWrapperBase):
            found.update(exposed(value))
    return found


def operator_metrics() -> dict[str, set[str]]:
    importlib.import_module(OPERATOR_MODULE)
    found: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # everything registered by importing it
        if isinstance(collector, MetricWrapperBase) and collector._name.startswith("kadence_"):
            found.update(exposed(collector))
    return found


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    names = dict(BUILT_IN)
    names.update(metrics_of(ServerMetrics("churn", "3", columns=[], classes=None)))
    names.update(metrics_of(MonitorMetrics(registry=CollectorRegistry())))
    names.update(operator_metrics())
    return names


@pytest.fixture(scope="module")
def queries(full_render) -> list[Query]:
    found = []
    for rule_set in by_kind(full_render, "PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                annotations = " ".join(rule.get("annotations", {}).values())
                found.append(Query(f"alert {rule['alert']}", rule["expr"], annotations))
    dashboard = json.loads((CHART / "dashboards" / "kadence-overview.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append(Query(f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(Query(f"variable {variable['name']}", variable["definition"]))
    return found


def used_names(queries: list[Query]) -> set[str]:
    return {name for q in queries for name in NAME.findall(q.expr)}


def labels_used(query: Query) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', query.expr)
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    labels |= set(re.findall(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    labels |= set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", query.legend))
    labels |= set(re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", query.legend))
    labels |= set(re.findall(r"label_values\([^,]+,\s*([a-zA-Z_]+)\)", query.expr))
    return labels


def test_the_rules_and_the_dashboard_cover_the_loop(queries):
    alerts = {q.where for q in queries if q.where.startswith("alert")}
    assert {"alert KadenceOperatorDown", "alert KadenceReconcileErrors", "alert KadenceCanaryRolledBack",
            "alert KadenceDriftDetected", "alert KadenceMonitorPolicyBreached",
            "alert KadenceRetrainBudgetExhausted"} <= alerts
    used = used_names(queries)
    for needed in ("kadence_serving_requests_total", "kadence_serving_request_duration_seconds_bucket",
                   "kadence_monitor_feature_drifted", "kadence_monitor_metric", "kadence_retrains_total"):
        assert needed in used


def test_model_server_and_monitor_metric_names_used_exist_in_the_code(queries, exported):
    used = {n for n in used_names(queries) if not n.startswith(OPERATOR_PREFIXES)}
    assert sorted(used - exported.keys()) == []


def test_operator_metric_names_used_exist_in_the_code(queries, exported):
    used = {n for n in used_names(queries) if n.startswith(OPERATOR_PREFIXES)}
    assert sorted(used - exported.keys()) == []


def test_every_label_a_query_uses_is_a_label_of_its_metrics_or_of_the_scrape_target(queries, exported):
    wrong = []
    for query in queries:
        names = [n for n in NAME.findall(query.expr) if n in exported]
        if not names:
            continue  # unknown names are reported by the tests above
        available = set().union(*(exported[n] for n in names)) | TARGET_LABELS
        unknown = labels_used(query) - available
        if unknown:
            wrong.append((query.where, sorted(unknown)))
    assert wrong == []


def test_a_misspelled_metric_is_caught(exported):
    query = Query("probe", 'sum by (model) (rate(kadence_serving_request_total[5m]))')
    assert used_names([query]) - exported.keys() == {"kadence_serving_request_total"}


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def test_every_query_is_valid_promql(queries):
    invalid = []
    for query in queries:
        if query.where.startswith("variable"):
            continue  # label_values(...) is Grafana's, not PromQL
        expr = query.expr
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        try:
            promql_parser.parse(expr)
        except ValueError as error:
            invalid.append((query.where, str(error)))
    assert invalid == []


def test_a_broken_query_is_refused_by_the_parser():
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (namespace (rate(kadence_serving_requests_total[5m]))")


def test_monitoring_objects_need_the_prometheus_operator_and_their_switches(default_render, chart_without):
    assert not [o for o in objects(default_render) if o["apiVersion"] == "monitoring.coreos.com/v1"]
    assert [o["kind"] for o in objects(chart_without) if o["apiVersion"] == "monitoring.coreos.com/v1"] == ["ServiceMonitor"]


@pytest.fixture(scope="module")
def chart_without():
    return render({"monitoring": {"podMonitor": {"enabled": False}, "prometheusRule": {"enabled": False}}},
                  api_versions=(PROMETHEUS_OPERATOR,))


def test_the_dashboard_is_a_well_formed_grafana_dashboard():
    dashboard = json.loads((CHART / "dashboards" / "kadence-overview.json").read_text())
    assert dashboard["uid"] == "kadence-overview" and dashboard["title"] == "Kadence / Loop overview"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids are unique"
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps another panel"
                cells.add((x, y))
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = {v for p in panels for t in p.get("targets", []) for v in re.findall(r"\$([a-z]+)\b", t["expr"])}
    assert used <= variables


def test_the_dashboard_configmap_carries_the_json_unchanged(full_render):
    configmap = next(o for o in objects(full_render) if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kadence-dashboard")
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kadence-overview.json"]) == json.loads(
        (CHART / "dashboards" / "kadence-overview.json").read_text())


def test_the_podmonitor_scrapes_the_model_servers_metrics_port_not_their_serving_port(full_render):
    from kadence.builders import serving as build

    (monitor,) = [m for m in by_kind(full_render, "PodMonitor")]
    owner = {"kind": "InferenceService", "metadata": {"name": "churn", "namespace": "ml", "uid": "u"}}
    container = build.serving_deployment(owner, "stable", 1, {}, 1)["spec"]["template"]["spec"]["containers"][0]
    declared = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]] == [("metrics", "/metrics")]
    assert declared["metrics"] == build.METRICS_PORT and declared["http"] != build.METRICS_PORT
