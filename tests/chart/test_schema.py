"""values.schema.json refuses what the chart does not know, at every depth, as `helm lint` and
`helm template` both do."""

from __future__ import annotations

import json

import pytest
from helm_python.errors import HelmValuesError

from .helm import CHART, lint_errors, render, values_file

MISSPELLED = [
    ({"replica": 2}, "replica"),
    ({"operator": {"replica": 2}}, "replica"),
    ({"operator": {"securityContext": {"readOnlyRootFS": True}}}, "readOnlyRootFS"),
    ({"storage": {"secretKeys": {"access": "x"}}}, "access"),
    ({"monitoring": {"serviceMonitor": {"enable": True}}}, "enable"),
    ({"minio": {"enabled": True, "persistance": {"size": "1Gi"}}}, "persistance"),
    ({"image": {"operator": {"tags": "1.0"}}}, "tags"),
]


def test_the_defaults_and_the_full_values_lint_clean_in_strict_mode():
    assert lint_errors() == []
    assert lint_errors(values_file("values-full.yaml")) == []


@pytest.mark.parametrize("values,key", MISSPELLED, ids=[k for _, k in MISSPELLED])
def test_an_unknown_key_fails_helm_lint_and_helm_template_naming_the_key(values, key):
    errors = lint_errors(values)
    assert any(f"'{key}' not allowed" in e for e in errors), errors
    with pytest.raises(HelmValuesError, match=f"additional properties '{key}' not allowed"):
        render(values)


@pytest.mark.parametrize("values,fragment", [
    ({"operator": {"replicas": "three"}}, "replicas"),
    ({"image": {"operator": {"pullPolicy": "Sometimes"}}}, "pullPolicy"),
    ({"image": {"operator": {"digest": "latest"}}}, "digest"),
    ({"watch": {"namespaces": ["Not_A_Namespace"]}}, "namespaces"),
    ({"monitoring": {"serviceMonitor": {"interval": "soon"}}}, "interval"),
    ({"storage": {"bucket": "x"}}, "bucket"),
])
def test_a_value_of_the_wrong_shape_is_refused(values, fragment):
    with pytest.raises(HelmValuesError, match=fragment):
        render(values)


def test_every_object_in_the_schema_closes_its_keys_except_documented_pass_throughs():
    open_objects = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object" and "additionalProperties" not in node and "description" not in node:
                open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}/{index}")

    for path in (CHART / "values.schema.json", CHART / "charts" / "minio" / "values.schema.json"):
        walk(json.loads(path.read_text()), str(path.relative_to(CHART)))
    assert open_objects == [], "objects that accept any key must say why in a description"
