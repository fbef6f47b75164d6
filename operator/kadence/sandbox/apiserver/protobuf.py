"""Decoding of the Kubernetes protobuf envelope for the kinds kubectl's typed generators send.

`kubectl create configmap|secret|namespace|serviceaccount|deployment|job|cronjob|service`
encode the new object as
`application/vnd.kubernetes.protobuf` and do not fall back to JSON, so the server reads these
kinds from protobuf. The envelope is the magic `k8s\\x00` followed by a `runtime.Unknown`
message whose `raw` field holds the object. Field numbers follow k8s.io/api generated.proto.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"

# message name -> {field number: (json name, type, repeated)}
# types: "string", "bytes", "int64", "int32", "bool", "time", a message name, or
# ("map", value type) for map<string, value type>.
SCHEMAS: dict[str, dict[int, tuple[str, Any, bool]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "rawbytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False), 2: ("generateName", "string", False),
        3: ("namespace", "string", False), 4: ("selfLink", "string", False),
        5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
        7: ("generation", "int64", False), 8: ("creationTimestamp", "time", False),
        9: ("deletionTimestamp", "time", False), 10: ("deletionGracePeriodSeconds", "int64", False),
        11: ("labels", ("map", "string"), False), 12: ("annotations", ("map", "string"), False),
        13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", "string", True),
    },
    "OwnerReference": {1: ("kind", "string", False), 3: ("name", "string", False),
                       4: ("uid", "string", False), 5: ("apiVersion", "string", False),
                       6: ("controller", "bool", False), 7: ("blockOwnerDeletion", "bool", False)},
    "ObjectReference": {1: ("kind", "string", False), 2: ("namespace", "string", False),
                        3: ("name", "string", False), 4: ("uid", "string", False),
                        5: ("apiVersion", "string", False), 6: ("resourceVersion", "string", False),
                        7: ("fieldPath", "string", False)},
    "LocalObjectReference": {1: ("name", "string", False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", ("map", "string"), False),
                  3: ("binaryData", ("map", "bytes"), False), 4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", ("map", "bytes"), False),
               3: ("type", "string", False), 4: ("stringData", ("map", "string"), False),
               5: ("immutable", "bool", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "NamespaceStatus", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "NamespaceStatus": {1: ("phase", "string", False)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False),
                       2: ("secrets", "ObjectReference", True),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", "bool", False)},
    "Time": {1: ("seconds", "int64", False), 2: ("nanos", "int32", False)},
    # workloads, as `kubectl create deployment|job|cronjob|service` build them
    "LabelSelector": {1: ("matchLabels", ("map", "string"), False),
                      2: ("matchExpressions", "LabelSelectorRequirement", True)},
    "LabelSelectorRequirement": {1: ("key", "string", False), 2: ("operator", "string", False),
                                 3: ("values", "string", True)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
    "PodSpec": {2: ("containers", "Container", True), 3: ("restartPolicy", "string", False),
                4: ("terminationGracePeriodSeconds", "int64", False),
                5: ("activeDeadlineSeconds", "int64", False), 6: ("dnsPolicy", "string", False),
                7: ("nodeSelector", ("map", "string"), False),
                8: ("serviceAccountName", "string", False), 10: ("nodeName", "string", False),
                20: ("initContainers", "Container", True)},
    "Container": {1: ("name", "string", False), 2: ("image", "string", False),
                  3: ("command", "string", True), 4: ("args", "string", True),
                  5: ("workingDir", "string", False), 6: ("ports", "ContainerPort", True),
                  7: ("env", "EnvVar", True), 8: ("resources", "ResourceRequirements", False),
                  14: ("imagePullPolicy", "string", False)},
    "ContainerPort": {1: ("name", "string", False), 2: ("hostPort", "int32", False),
                      3: ("containerPort", "int32", False), 4: ("protocol", "string", False),
                      5: ("hostIP", "string", False)},
    "EnvVar": {1: ("name", "string", False), 2: ("value", "string", False)},
    "ResourceRequirements": {1: ("limits", ("map", "Quantity"), False),
                             2: ("requests", ("map", "Quantity"), False)},
    "Quantity": {1: ("string", "string", False)},
    "Deployment": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "DeploymentSpec", False)},
    "DeploymentSpec": {1: ("replicas", "int32", False), 2: ("selector", "LabelSelector", False),
                       3: ("template", "PodTemplateSpec", False),
                       4: ("strategy", "DeploymentStrategy", False),
                       5: ("minReadySeconds", "int32", False),
                       6: ("revisionHistoryLimit", "int32", False), 7: ("paused", "bool", False),
                       9: ("progressDeadlineSeconds", "int32", False)},
    "DeploymentStrategy": {1: ("type", "string", False)},
    "Job": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False)},
    "JobSpec": {1: ("parallelism", "int32", False), 2: ("completions", "int32", False),
                3: ("activeDeadlineSeconds", "int64", False), 4: ("selector", "LabelSelector", False),
                5: ("manualSelector", "bool", False), 6: ("template", "PodTemplateSpec", False),
                7: ("backoffLimit", "int32", False), 8: ("ttlSecondsAfterFinished", "int32", False),
                9: ("completionMode", "string", False), 10: ("suspend", "bool", False)},
    "CronJob": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "CronJobSpec", False)},
    "CronJobSpec": {1: ("schedule", "string", False), 2: ("startingDeadlineSeconds", "int64", False),
                    3: ("concurrencyPolicy", "string", False), 4: ("suspend", "bool", False),
                    5: ("jobTemplate", "JobTemplateSpec", False),
                    6: ("successfulJobsHistoryLimit", "int32", False),
                    7: ("failedJobsHistoryLimit", "int32", False), 8: ("timeZone", "string", False)},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "JobSpec", False)},
    "Service": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "ServiceSpec", False)},
    "ServiceSpec": {1: ("ports", "ServicePort", True), 2: ("selector", ("map", "string"), False),
                    3: ("clusterIP", "string", False), 4: ("type", "string", False),
                    5: ("externalIPs", "string", True), 7: ("sessionAffinity", "string", False),
                    10: ("externalName", "string", False)},
    "ServicePort": {1: ("name", "string", False), 2: ("protocol", "string", False),
                    3: ("port", "int32", False), 4: ("targetPort", "IntOrString", False),
                    5: ("nodePort", "int32", False)},
    "IntOrString": {1: ("type", "int64", False), 2: ("intVal", "int32", False),
                    3: ("strVal", "string", False)},
    # `kubectl auth can-i`
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                2: ("spec", "SelfSubjectAccessReviewSpec", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False),
                           3: ("group", "string", False), 4: ("version", "string", False),
                           5: ("resource", "string", False), 6: ("subresource", "string", False),
                           7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta", False),
                               2: ("spec", "SelfSubjectRulesReviewSpec", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    # `kubectl auth whoami` (the spec is empty: the token names the user)
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", False)},
}

# Optional (pointer) fields whose zero value was set on purpose and must be kept.
KEEP_ZERO = {("DeploymentSpec", "replicas"), ("JobSpec", "parallelism"),
             ("JobSpec", "completions"), ("JobSpec", "backoffLimit"),
             ("PodSpec", "terminationGracePeriodSeconds"), ("CronJobSpec", "suspend"),
             ("JobSpec", "suspend")}

SUPPORTED_KINDS = ("ConfigMap", "Secret", "Namespace", "ServiceAccount", "Deployment", "Job",
                   "CronJob", "Service", "SelfSubjectAccessReview", "SelfSubjectRulesReview",
                   "SelfSubjectReview")


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    """Yield (field number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos:pos + length]
            if len(value) != length:
                raise ProtobufError("truncated field")
            pos += length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "rawbytes":
        return bytes(value)
    if kind == "bool":
        return bool(value)
    if kind in ("int64", "int32"):
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtobufError(f"unknown scalar type {kind}")


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    schema = SCHEMAS[name]
    result: dict[str, Any] = {}
    for number, _wire, value in _fields(data):
        if number not in schema:
            continue  # fields a new object never carries (status conditions, managedFields)
        field, kind, repeated = schema[number]
        if isinstance(kind, tuple):  # map<string, value>
            entry = {n: v for n, _, v in _fields(value)}
            key = _scalar("string", entry.get(1, b""))
            if kind[1] == "Quantity":
                item: Any = decode_message("Quantity", entry.get(2, b"")).get("string", "0")
            else:
                item = _scalar(kind[1], entry.get(2, b""))
            result.setdefault(field, {})[key] = item
            continue
        if kind == "IntOrString":
            parts = decode_message("IntOrString", value)
            result[field] = parts.get("strVal", "") if parts.get("type") == 1 \
                else parts.get("intVal", 0)
            continue
        if kind == "time":
            seconds = decode_message("Time", value).get("seconds", 0)
            if seconds <= 0:
                continue  # Go's zero time: the field was never set
            decoded: Any = datetime.datetime.fromtimestamp(
                seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind in SCHEMAS:
            decoded = decode_message(kind, value)
        else:
            decoded = _scalar(kind, value)
        if repeated:
            result.setdefault(field, []).append(decoded)
        elif decoded not in ("", 0, False, {}) or (name, field) in KEEP_ZERO:
            result[field] = decoded  # other zero values are Go's defaults, not choices
    return result


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode an enveloped object; 415 for kinds the sandbox cannot read from protobuf."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "protobuf body does not start with the k8s envelope magic")
    try:
        envelope = decode_message("Unknown", body[len(MAGIC):])
        type_meta = envelope.get("typeMeta", {})
        kind = type_meta.get("kind", "")
        if kind not in SUPPORTED_KINDS:
            raise ApiError(415, f"the sandbox reads {kind or 'this object'} only as JSON: "
                                "send application/json")
        obj = decode_message(kind, envelope.get("raw", b""))
    except ProtobufError as error:
        raise ApiError(400, f"could not decode the protobuf body: {error}") from None
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
