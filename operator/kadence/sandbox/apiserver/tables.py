"""`Table` responses (meta.k8s.io/v1) for `kubectl get`: printer columns of CRDs and the
columns kube-apiserver prints for built-in kinds."""

from __future__ import annotations

import datetime
import json
from typing import Any, Callable

from . import jsonpath
from .resources import ResourceType

Column = dict[str, Any]
Row = list[Any]


def human_duration(seconds: float) -> str:
    """The age format of k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // 24 // 365)
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: datetime.datetime) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return "<invalid>"
    return human_duration((now - then).total_seconds())


def _col(name: str, type_: str = "string", description: str = "", priority: int = 0,
         format_: str = "") -> Column:
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


NAME = _col("Name", format_="name", description="Name must be unique within a namespace.")
AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time "
                              "when this object was created.")
CREATED_AT = _col("Created At", "date", "CreationTimestamp is a timestamp representing the "
                                        "server time when this object was created.")


def _meta_age(obj: dict[str, Any], now: datetime.datetime) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


# ---- built-in printers: (columns, cells) ------------------------------------------------------

def _pod(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container in statuses:
        state = container.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and status.get("phase") not in ("Succeeded",):
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}" if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode')}")
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts_cell: Any = restarts
    last_restart = [c.get("lastState", {}).get("terminated", {}).get("finishedAt")
                    for c in statuses if c.get("lastState", {}).get("terminated")]
    if restarts and last_restart and last_restart[0]:
        restarts_cell = f"{restarts} ({age(last_restart[0], now)} ago)"
    return [obj["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason,
            restarts_cell, _meta_age(obj, now), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            "<none>"]


_POD_COLUMNS = [NAME, _col("Ready", description="The aggregate readiness state of this pod "
                                                "for accepting traffic."),
                _col("Status", description="The aggregate status of the containers in this pod."),
                _col("Restarts", description="The number of times the containers in this pod "
                                             "have been restarted and when the last container "
                                             "in this pod has restarted."),
                AGE, _col("IP", priority=1), _col("Node", priority=1),
                _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)]


def _containers_and_images(template_spec: dict[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _selector_text(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        op = expression.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{expression['key']} {op.lower()} ({','.join(expression.get('values') or [])})")
        elif op == "Exists":
            parts.append(expression["key"])
        else:
            parts.append(f"!{expression['key']}")
    return ",".join(parts) or "<none>"


def _deployment(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_and_images((spec.get("template") or {}).get("spec") or {})
    return [obj["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            _meta_age(obj, now), names, images, _selector_text(spec.get("selector"))]


_DEPLOYMENT_COLUMNS = [NAME, _col("Ready"), _col("Up-to-date", "integer"),
                       _col("Available", "integer"), AGE, _col("Containers", priority=1),
                       _col("Images", priority=1), _col("Selector", priority=1)]


def _replicaset(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_and_images((spec.get("template") or {}).get("spec") or {})
    return [obj["metadata"]["name"], spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), _meta_age(obj, now), names, images,
            _selector_text(spec.get("selector"))]


_REPLICASET_COLUMNS = [NAME, _col("Desired", "integer"), _col("Current", "integer"),
                       _col("Ready", "integer"), AGE, _col("Containers", priority=1),
                       _col("Images", priority=1), _col("Selector", priority=1)]


def _job_status(obj: dict[str, Any]) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True":
        return "Complete"
    if conditions.get("Failed") == "True":
        return "Failed"
    if conditions.get("FailureTarget") == "True" or conditions.get("SuccessCriteriaMet") == "True":
        return "Terminating"
    if spec.get("suspend") or conditions.get("Suspended") == "True":
        return "Suspended"
    return "Running"


def _job(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    completions = spec.get("completions")
    succeeded = status.get("succeeded", 0)
    if completions is not None:
        completion_text = f"{succeeded}/{completions}"
    else:
        parallelism = spec.get("parallelism", 1)
        completion_text = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start, end = status.get("startTime"), status.get("completionTime")
    duration = ""
    if start:
        finish = now
        if end:
            finish = datetime.datetime.strptime(end[:19], "%Y-%m-%dT%H:%M:%S").replace(
                tzinfo=datetime.timezone.utc)
        duration = age(start, finish)
    names, images = _containers_and_images((spec.get("template") or {}).get("spec") or {})
    return [obj["metadata"]["name"], _job_status(obj), completion_text, duration,
            _meta_age(obj, now), names, images, _selector_text(spec.get("selector"))]


_JOB_COLUMNS = [NAME, _col("Status"), _col("Completions"), _col("Duration"), AGE,
                _col("Containers", priority=1), _col("Images", priority=1),
                _col("Selector", priority=1)]


def _service(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec = obj.get("spec") or {}
    ports = []
    for port in spec.get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    external = ",".join(spec.get("externalIPs") or []) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    if spec.get("type") == "ExternalName":
        external = spec.get("externalName", "<none>")
    selector = spec.get("selector")
    return [obj["metadata"]["name"], spec.get("type", "ClusterIP"),
            spec.get("clusterIP") or "<none>", external, ",".join(ports) or "<none>",
            _meta_age(obj, now),
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())) if selector else "<none>"]


_SERVICE_COLUMNS = [NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                    _col("Port(s)"), AGE, _col("Selector", priority=1)]


def _event(obj: dict[str, Any], now: datetime.datetime) -> Row:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or \
        obj["metadata"].get("creationTimestamp")
    first = obj.get("firstTimestamp") or obj.get("eventTime") or \
        obj["metadata"].get("creationTimestamp")
    source = obj.get("reportingComponent") or (obj.get("source") or {}).get("component", "")
    return [age(last, now), obj.get("type", ""), obj.get("reason", ""),
            f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}",
            involved.get("fieldPath", ""), source, obj.get("message", "").strip(),
            age(first, now), obj.get("count", 1), obj["metadata"]["name"]]


_EVENT_COLUMNS = [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
                  _col("Subobject", priority=1), _col("Source", priority=1), _col("Message"),
                  _col("First Seen", priority=1), _col("Count", priority=1),
                  _col("Name", priority=1)]


def _simple(*extract: Callable[[dict[str, Any]], Any]) -> Callable[..., Row]:
    def row(obj: dict[str, Any], now: datetime.datetime) -> Row:
        return [obj["metadata"]["name"], *[f(obj) for f in extract], _meta_age(obj, now)]

    return row


def _namespace_row(obj: dict[str, Any], now: datetime.datetime) -> Row:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"),
            _meta_age(obj, now)]


def _hpa_row(obj: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    current = {m.get("resource", {}).get("name"): m for m in status.get("currentMetrics") or []}
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        target = (resource.get("target") or {}).get("averageUtilization")
        got = ((current.get(resource.get("name")) or {}).get("resource") or {}).get(
            "current", {}).get("averageUtilization")
        targets.append(f"{resource.get('name', 'metric')}: "
                       f"{'<unknown>' if got is None else f'{got}%'}/{target}%")
    return [obj["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}",
            ", ".join(targets) or "<none>", spec.get("minReplicas", 1), spec.get("maxReplicas"),
            status.get("currentReplicas", 0), _meta_age(obj, now)]


def _node_row(obj: dict[str, Any], now: datetime.datetime) -> Row:
    conditions = {c.get("type"): c.get("status") for c in
                  (obj.get("status") or {}).get("conditions") or []}
    ready = "Ready" if conditions.get("Ready") == "True" else "NotReady"
    roles = [k.split("/", 1)[1] for k in obj["metadata"].get("labels") or {}
             if k.startswith("node-role.kubernetes.io/")]
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [obj["metadata"]["name"], ready, ",".join(roles) or "<none>", _meta_age(obj, now),
            version]


BUILTIN_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[..., Row]]] = {
    ("", "pods"): (_POD_COLUMNS, _pod),
    ("apps", "deployments"): (_DEPLOYMENT_COLUMNS, _deployment),
    ("apps", "replicasets"): (_REPLICASET_COLUMNS, _replicaset),
    ("batch", "jobs"): (_JOB_COLUMNS, _job),
    ("", "services"): (_SERVICE_COLUMNS, _service),
    ("", "events"): (_EVENT_COLUMNS, _event),
    ("", "namespaces"): ([NAME, _col("Status"), AGE], _namespace_row),
    ("", "configmaps"): ([NAME, _col("Data", "integer"), AGE],
                         _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    ("", "secrets"): ([NAME, _col("Type"), _col("Data", "integer"), AGE],
                      _simple(lambda o: o.get("type", "Opaque"), lambda o: len(o.get("data") or {}))),
    ("", "serviceaccounts"): ([NAME, _col("Secrets", "integer"), AGE],
                              _simple(lambda o: len(o.get("secrets") or []))),
    ("", "endpoints"): ([NAME, _col("Endpoints"), AGE], _simple(
        lambda o: ",".join(f"{a.get('ip')}:{p.get('port')}" for s in o.get("subsets") or []
                           for a in s.get("addresses") or [] for p in s.get("ports") or [])
        or "<none>")),
    ("", "nodes"): ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version")], _node_row),
    ("coordination.k8s.io", "leases"): ([NAME, _col("Holder"), AGE],
                                        _simple(lambda o: (o.get("spec") or {}).get(
                                            "holderIdentity", ""))),
    ("autoscaling", "horizontalpodautoscalers"): (
        [NAME, _col("Reference"), _col("Targets"), _col("MinPods", "integer"),
         _col("MaxPods", "integer"), _col("Replicas", "integer"), AGE], _hpa_row),
}


# ---- custom resources ------------------------------------------------------------------------

def _custom_cell(obj: dict[str, Any], column: dict[str, Any], now: datetime.datetime) -> Any:
    try:
        values = jsonpath.find(obj, column.get("jsonPath", ""))
    except jsonpath.JsonPathError:
        return None
    if not values:
        return None
    value = values[0]
    kind = column.get("type", "string")
    if kind == "date" and isinstance(value, str):
        return age(value, now)
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if kind in ("number", "boolean") and isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if kind == "string" and isinstance(value, str) else (
        str(value) if kind == "string" else value)


CUSTOM_AGE = _col("Age", "date")


def columns_for(rtype: ResourceType) -> list[Column]:
    """Built-ins without a printer get Name and Created At (a timestamp), custom resources
    without printer columns get Name and Age, as kube-apiserver does."""
    if rtype.builtin:
        printer = BUILTIN_PRINTERS.get(rtype.key)
        return list(printer[0]) if printer else [NAME, CREATED_AT]
    if not rtype.printer_columns:
        return [NAME, CUSTOM_AGE]
    return [NAME] + [
        _col(c["name"], c.get("type", "string"), c.get("description", ""), c.get("priority", 0),
             c.get("format", ""))
        for c in rtype.printer_columns
    ]


def cells_for(rtype: ResourceType, obj: dict[str, Any], now: datetime.datetime) -> Row:
    if rtype.builtin:
        printer = BUILTIN_PRINTERS.get(rtype.key)
        if printer:
            return printer[1](obj, now)
        return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]
    if not rtype.printer_columns:
        return [obj["metadata"]["name"], _meta_age(obj, now)]
    return [obj["metadata"]["name"]] + [_custom_cell(obj, c, now) for c in rtype.printer_columns]


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def table(rtype: ResourceType, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
          resource_version: str = "", continue_token: str = "",
          now: datetime.datetime | None = None, with_columns: bool = True) -> dict[str, Any]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells_for(rtype, obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    result: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                              "metadata": metadata, "columnDefinitions": None, "rows": rows}
    if with_columns:
        result["columnDefinitions"] = columns_for(rtype)
    else:
        result["columnDefinitions"] = []
    return result
