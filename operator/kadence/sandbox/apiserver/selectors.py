"""Label and field selectors, parsed from their query-string form and matched against objects."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

from .errors import bad_request

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        raise AssertionError(self.operator)


LabelSelector = tuple[Requirement, ...]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_RE = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`; raise 400 for anything else."""
    if not text:
        return ()
    requirements = []
    for part in _split_top_level(text):
        if match := _SET_RE.match(part):
            key, op, values = match.groups()
            items = tuple(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(_checked_key(key, text), op, items))
        elif match := _EQ_RE.match(part):
            key, op, value = match.groups()
            requirements.append(
                Requirement(_checked_key(key, text), "!=" if op == "!=" else "=", (value,))
            )
        elif part.startswith("!"):
            requirements.append(Requirement(_checked_key(part[1:].strip(), text), "!"))
        else:
            requirements.append(Requirement(_checked_key(part, text), "exists"))
    return tuple(requirements)


def _checked_key(key: str, text: str) -> str:
    if not _LABEL_KEY.match(key):
        raise bad_request(f'unable to parse requirement: invalid label key "{key}" in "{text}"')
    return key


def labels_match(selector: LabelSelector, labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in selector)


def label_selector_from_object(selector: dict[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels / matchExpressions) as requirements."""
    if not selector:
        return ()
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator"))
        if operator is None:
            raise bad_request(f"{expression.get('operator')!r} is not a valid label selector operator")
        requirements.append(
            Requirement(expression["key"], operator, tuple(expression.get("values") or ()))
        )
    return tuple(requirements)


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
    for part in _split_top_level(text):
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
