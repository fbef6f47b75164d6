"""The configuration reference of charts/kadence/README.md, generated from the `# --`
comments of values.yaml (and of the bundled MinIO's values.yaml, under `minio.`).

    .venv/bin/python -m tests.chart.valuesdoc      # rewrite the table in the README
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "kadence"
README = CHART / "README.md"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def documented_keys(text: str) -> dict[str, str]:
    """Dotted key -> the description of its `# --` comment, for every key that has one."""
    described: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if not match:
            if not stripped:
                pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            described[".".join(k for _, k in stack)] = " ".join(p for p in pending if p)
            pending = None
    return described


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Every key path of the values, maps included (a map is a path and so are its keys)."""
    paths = []
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.append(path)
            paths += leaf_paths(value, path)
    return paths


def undocumented(values: dict, described: dict[str, str]) -> list[str]:
    """Keys with no description of their own and no described ancestor; maps whose keys are
    described need no description of their own."""
    missing = []
    for path in leaf_paths(values):
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        if path in described or ancestors & described.keys():
            continue
        if any(key.startswith(path + ".") for key in described):
            continue
        missing.append(path)
    return missing


def lookup(values: dict, path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def type_of(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}.get(type(value), "null")


def rows(values_path: Path, prefix: str = "") -> list[Row]:
    text = values_path.read_text()
    values = yaml.safe_load(text)
    described = documented_keys(text)
    return [Row(prefix + key, type_of(lookup(values, key)), json.dumps(lookup(values, key), separators=(", ", ": ")),
                description) for key, description in described.items()]


def table() -> str:
    lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    all_rows = rows(CHART / "values.yaml") + rows(CHART / "charts" / "minio" / "values.yaml", "minio.")
    for row in all_rows:
        cells = [f"`{row.key}`", row.type, f"`{row.default}`", row.description.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_with_table(readme: str) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table()}\n{END}{after}"


if __name__ == "__main__":
    README.write_text(readme_with_table(README.read_text()))
    sys.exit(0)
