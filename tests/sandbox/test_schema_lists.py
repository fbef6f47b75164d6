"""List merge strategies read from the schemas (for strategic merge patch and server-side
apply), for built-in kinds and for custom kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kadence.sandbox.apiserver.schema import builtin_list_strategy, crd_list_strategy

FIXTURE_CRD = Path(__file__).parent / "fixtures" / "schema" / "widgets-crd.yaml"

BUILTIN_CASES = [
    ("apps/v1", "Deployment", ("spec", "template", "spec", "containers"), ("merge", "name")),
    ("apps/v1", "Deployment", ("spec", "template", "spec", "containers", "env"), ("merge", "name")),
    ("apps/v1", "Deployment", ("spec", "template", "spec", "containers", "ports"),
     ("merge", "containerPort")),
    ("apps/v1", "Deployment", ("spec", "template", "spec", "containers", "args"), (None, None)),
    ("apps/v1", "Deployment", ("status", "conditions"), ("merge", "type")),
    ("v1", "Service", ("spec", "ports"), ("merge", "port")),
    ("batch/v1", "Job", ("spec", "template", "spec", "volumes"), ("merge", "name")),
    ("v1", "Pod", ("metadata", "finalizers"), ("merge", None)),
    ("v1", "Pod", ("metadata", "ownerReferences"), ("merge", "uid")),
    ("v1", "Pod", ("spec", "nonexistent"), (None, None)),
]


@pytest.mark.parametrize(("api_version", "kind", "path", "expected"), BUILTIN_CASES,
                         ids=[".".join(case[2]) + "@" + case[1] for case in BUILTIN_CASES])
def test_a_built_in_list_merges_as_its_definition_says(api_version, kind, path, expected):
    assert builtin_list_strategy(api_version, kind)(path) == expected


@pytest.mark.parametrize(("path", "expected"), [
    (("spec", "families"), ("merge", "name")),
    (("spec", "tags"), ("merge", None)),
    (("spec", "choice"), (None, None)),
    (("metadata", "finalizers"), ("merge", None)),
])
def test_a_custom_list_merges_as_its_list_type_says(path, expected):
    crd = yaml.safe_load(FIXTURE_CRD.read_text())
    assert crd_list_strategy(crd, "v1")(path) == expected
