"""Label and field selectors, parsed from their query-string form and matched against objects.

Label selectors are `kadence.k8s.selectors` (shared with the operator's cache and the node's
controllers); here their errors become 400s, and field selectors are the API server's own."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

from ...k8s import selectors as label_selectors
from .errors import bad_request

LabelSelector = label_selectors.Selector
labels_match = label_selectors.matches


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`; raise 400 for anything else."""
    try:
        return label_selectors.parse(text)
    except label_selectors.SelectorError as error:
        raise bad_request(str(error)) from None


def label_selector_from_object(selector: dict[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels / matchExpressions) as requirements; 400 if invalid."""
    try:
        return label_selectors.from_object(selector)
    except label_selectors.SelectorError as error:
        raise bad_request(str(error)) from None


# ---- field selectors ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negated: bool

    def matches(self, obj: dict[str, Any]) -> bool:
        actual = field_value(obj, self.path)
        return (actual != self.value) if self.negated else (actual == self.value)


FieldSelector = tuple[FieldRequirement, ...]

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}

# Fields kube-apiserver lets each built-in kind be selected by (beyond the common two).
SUPPORTED_FIELDS: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                   "status.podIP", "status.nominatedNodeName"},
    ("", "events"): {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"},
    ("events.k8s.io", "events"): {"regarding.kind", "regarding.namespace", "regarding.name",
                                  "regarding.uid", "reason", "reportingController", "type"},
    ("", "secrets"): {"type"},
    ("", "namespaces"): {"status.phase"},
    ("", "nodes"): {"spec.unschedulable"},
    ("batch", "jobs"): {"status.successful"},
    ("apps", "replicasets"): {"status.replicas"},
}


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a dotted field, "" when absent (as the API server compares it)."""
    if path == "source" and "source" in obj:
        return str((obj.get("source") or {}).get("component", ""))
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(
    text: str | None, group: str, plural: str, custom_fields: set[str] | None = None
) -> FieldSelector:
    """Parse `a=b,c!=d`, refusing fields the kind does not support (400, as upstream)."""
    if not text:
        return ()
    allowed = _COMMON_FIELDS | SUPPORTED_FIELDS.get((group, plural), set()) | (custom_fields or set())
    requirements = []
    for part in label_selectors.split_top_level(text):
        match = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$", part)
        if not match:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{part}\'')
        path, op, value = match.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        requirements.append(FieldRequirement(path, value, op == "!="))
    return tuple(requirements)


def fields_match(selector: FieldSelector, obj: dict[str, Any]) -> bool:
    return all(req.matches(obj) for req in selector)


def object_filter(labels: LabelSelector, fields: FieldSelector) -> Callable[[dict], bool]:
    def matches(obj: dict[str, Any]) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields_match(
            fields, obj
        )

    return matches
