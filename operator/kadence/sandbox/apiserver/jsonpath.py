"""The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, `['a.b']`,
and filters like `.status.conditions[?(@.type=="Ready")].status`."""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.\.?(?P<name>[A-Za-z0-9_\-$/\x00]+)   # .name (escaped dots arrive as NUL)
      | \[\s*'(?P<quoted>[^']*)'\s*\]                      # ['name']
      | \[\s*"(?P<dquoted>[^"]*)"\s*\]                     # ["name"]
      | \[\s*(?P<index>-?\d+)\s*\]                          # [0]
      | \[\s*(?P<star>\*)\s*\]                              # [*]
      | \[\s*\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?P<op>==|!=)\s*(?P<fvalue>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\s*\]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    pass


def parse(expression: str) -> list[tuple[str, Any]]:
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    text = text.replace("\\.", "\x00")
    steps: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise JsonPathError(f"unsupported JSONPath {expression!r} at {text[position:]!r}")
        if match.group("name") is not None:
            steps.append(("field", match.group("name").replace("\x00", ".")))
        elif match.group("quoted") is not None or match.group("dquoted") is not None:
            steps.append(("field", (match.group("quoted") or match.group("dquoted") or "")
                          .replace("\x00", ".")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("star") is not None:
            steps.append(("all", None))
        else:
            raw = match.group("fvalue")
            if raw[0] in "'\"":
                value: Any = raw[1:-1]
            else:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
            steps.append(("filter", (match.group("fpath")[1:].split("."), match.group("op"),
                                     value)))
        position = match.end()
    return steps


def find(obj: Any, expression: str) -> list[Any]:
    """All values the expression selects, in document order."""
    current = [obj]
    for kind, arg in parse(expression):
        following: list[Any] = []
        for value in current:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    following.append(value[arg])
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    following.append(value[arg])
            elif kind == "all":
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
            else:
                path, op, wanted = arg
                items = value if isinstance(value, list) else []
                for item in items:
                    actual: Any = item
                    for part in path:
                        actual = actual.get(part) if isinstance(actual, dict) else None
                    if (actual == wanted or str(actual) == str(wanted)) == (op == "=="):
                        following.append(item)
        current = following
    return current
