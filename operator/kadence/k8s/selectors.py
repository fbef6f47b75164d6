"""Label selectors as Kubernetes defines them, parsed to requirements and matched against labels.

Two forms: the query string (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and the object of a
Deployment's or Job's spec (`metav1.LabelSelector`: matchLabels + matchExpressions). One
implementation for the operator's object cache and the sandbox's API server and controllers.
Pure: no Kubernetes client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class SelectorError(ValueError):
    """A selector Kubernetes would refuse; the message is kube-apiserver's."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        raise AssertionError(self.operator)


Selector = tuple[Requirement, ...]

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQUALITY = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$")
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def split_top_level(text: str) -> list[str]:
    """The comma-separated parts of a selector, commas inside parentheses kept."""
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


def _checked_key(key: str, text: str) -> str:
    if not _KEY.match(key):
        raise SelectorError(f'unable to parse requirement: invalid label key "{key}" in "{text}"')
    return key


def parse(text: str | None) -> Selector:
    """The query-string form; empty selects everything."""
    if not text:
        return ()
    requirements = []
    for part in split_top_level(text):
        if match := _SET.match(part):
            key, operator, values = match.groups()
            items = tuple(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(_checked_key(key, text), operator, items))
        elif match := _EQUALITY.match(part):
            key, operator, value = match.groups()
            requirements.append(Requirement(_checked_key(key, text), "!=" if operator == "!=" else "=", (value,)))
        elif part.startswith("!"):
            requirements.append(Requirement(_checked_key(part[1:].strip(), text), "!"))
        else:
            requirements.append(Requirement(_checked_key(part, text), "exists"))
    return tuple(requirements)


def from_object(selector: dict | None) -> Selector:
    """A `metav1.LabelSelector` (matchLabels, matchExpressions); empty selects everything here,
    and callers that treat an empty selector as selecting nothing (controllers) say so."""
    if not selector:
        return ()
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        operator = _OPERATORS.get(expression.get("operator"))
        if operator is None:
            raise SelectorError(f"{expression.get('operator')!r} is not a valid label selector operator")
        requirements.append(Requirement(expression.get("key", ""), operator, tuple(expression.get("values") or ())))
    return tuple(requirements)


def matches(selector: Selector, labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in selector)
