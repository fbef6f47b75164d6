"""All label and annotation keys live in kadence.api.keys (issue 16.1)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kadence.api import keys

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "kadence"
# A key as a whole string ("kadence.dev/model"), or the start of a selector ("kadence.dev/owner-kind=").
KEY = re.compile(r"^(sandbox\.)?kadence\.dev/[a-z][a-z0-9-]*=?$")
# Not keys: the `kind` of JSON documents Kadence writes (results, manifests, alerts) and its API group.
DOCUMENT_KINDS = {"kadence.dev/ingest-result", "kadence.dev/materialize-result", "kadence.dev/monitor-result",
                  "kadence.dev/dataset-snapshot", "kadence.dev/featureset-snapshot", "kadence.dev/profile",
                  "kadence.dev/alert", "kadence.dev/compare-result", "kadence.dev/v1alpha1",
                  "kadence.dev/batch-result", "kadence.dev/batch-output", "kadence.dev/model-export",
                  "kadence.dev/erasure", "kadence.dev/erasure-result", "kadence.dev/erasure-guard"}


def key_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
            if node.value not in DOCUMENT_KINDS:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value}")
    return found


def test_no_module_spells_a_key_itself():
    # The sandbox is a stand-in cluster with its own keys (sandbox.kadence.dev/...): it reads
    # what the operator writes through the same constants, so it is checked too.
    offenders = [hit for path in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in path.parts
                 and path != PACKAGE / "api" / "keys.py" for hit in key_literals(path)]
    assert offenders == [], "use kadence.api.keys: " + ", ".join(offenders)


def test_every_key_is_under_kadences_prefix_or_a_standard_one_and_unique():
    values = {name: value for name, value in vars(keys).items() if name.isupper() and isinstance(value, str)
              and name not in ("PREFIX", "GROUP")}
    assert all(v.startswith((keys.PREFIX, "sandbox." + keys.PREFIX, "app.kubernetes.io/")) for v in values.values())
    duplicates = {v for v in values.values() if list(values.values()).count(v) > 1}
    assert duplicates == set()


def test_user_keys_are_documented_in_the_readme():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    assert [k for k in keys.USER_KEYS if k not in readme] == []


def test_the_finder_sees_a_key_and_a_selector_but_not_prose(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Docs mention kadence.dev/model in prose."""\nA = "kadence.dev/model"\n'
                      'B = f"kadence.dev/owner-kind={x}"\nC = "kadence.dev/profile"\n')
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path.parent
    try:
        assert [hit.split(" ")[1] for hit in key_literals(module)] == ["kadence.dev/model", "kadence.dev/owner-kind="]
    finally:
        PACKAGE = saved
