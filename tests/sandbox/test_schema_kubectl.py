"""The schema side of the sandbox seen through the real kubectl: `explain` of custom and
built-in kinds, `apply` refused with the field named (422), unknown fields refused under
`--validate=strict`, and the project's CRDs and invalid examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CRD = Path(__file__).parent / "fixtures" / "schema" / "widgets-crd.yaml"
INVALID_EXAMPLES = REPO / "examples" / "invalid" / "invalid-manifests.yaml"


@pytest.fixture(scope="module")
def widgets(kubectl):
    kubectl("apply", "-f", str(FIXTURE_CRD))
    kubectl("wait", "--for=condition=Established", "--timeout=30s",
            "crd/widgets.test.kadence.dev")
    yield
    kubectl("delete", "-f", str(FIXTURE_CRD), "--wait=false", check=False)


@pytest.fixture(scope="module")
def project_crds(kubectl):
    kubectl("apply", "-f", str(REPO / "crds"))
    for path in sorted((REPO / "crds").glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        kubectl("wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")


def widget(name: str, spec: str) -> str:
    return (f"apiVersion: test.kadence.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\n"
            f"  namespace: default\nspec: {spec}\n")


def test_explain_shows_the_field_descriptions_of_a_custom_kind(kubectl, widgets):
    output = kubectl("explain", "widgets.spec").stdout
    assert "KIND:       Widget" in output
    assert "What the user wants of the widget." in output
    assert "size\t<string> -required-" in output
    assert "How big the widget is." in output


def test_explain_of_a_custom_field_shows_its_enum(kubectl, widgets):
    output = kubectl("explain", "widgets.spec.size").stdout
    assert "FIELD: size <string>" in output
    assert "ENUM:\n    small\n    medium\n    large\n    huge" in output


def test_explain_of_a_built_in_field(kubectl):
    output = kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in output
    assert "Number of desired pods." in output


@pytest.mark.parametrize("resource", ["widgets.spec.size", "deployment.spec.replicas"])
def test_explain_through_openapi_v2_in_protobuf(kubectl, widgets, resource):
    output = kubectl("explain", "--output", "plaintext-openapiv2", resource).stdout
    assert "DESCRIPTION:" in output
    assert ("How big the widget is." in output) or ("Number of desired pods." in output)


def test_apply_of_an_invalid_custom_object_is_refused_with_the_fields_named(kubectl, widgets):
    result = kubectl("apply", "-f", "-", check=False,
                     input=widget("bad-widget", "{size: enormous, replicas: -1}"))
    assert result.returncode != 0
    assert 'The Widget "bad-widget" is invalid' in result.stderr
    assert ('spec.size: Unsupported value: "enormous": supported values: "small", "medium", '
            '"large", "huge"') in result.stderr
    assert ("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
            "equal to 0") in result.stderr
    assert kubectl("get", "widget", "bad-widget", check=False).returncode != 0


def test_a_failing_cel_rule_refuses_the_object_with_its_message(kubectl, widgets):
    result = kubectl("apply", "-f", "-", check=False,
                     input=widget("huge-widget", "{size: huge, replicas: 5}"))
    assert result.returncode != 0
    assert "spec: Forbidden: a huge widget allows at most 2 replicas, not 5" in result.stderr


def test_apply_of_a_valid_custom_object_stores_it_defaulted(kubectl, widgets):
    kubectl("apply", "-f", "-", input=widget("good-widget", "{size: small}"))
    stored = yaml.safe_load(kubectl("get", "widget", "good-widget", "-o", "yaml").stdout)
    assert stored["spec"] == {"size": "small", "replicas": 1}


def test_apply_with_validate_strict_refuses_an_unknown_field(kubectl, widgets):
    result = kubectl("apply", "--validate=strict", "-f", "-", check=False,
                     input=widget("colourful-widget", "{size: small, colour: red}"))
    assert result.returncode != 0
    assert ('Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
            'unknown field "spec.colour"') in result.stderr
    assert kubectl("get", "widget", "colourful-widget", check=False).returncode != 0


def test_apply_with_validate_strict_refuses_an_unknown_field_of_a_built_in_kind(kubectl):
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict-cm\n"
                "  namespace: default\ndata: {a: b}\ncolour: red\n")
    result = kubectl("apply", "--validate=strict", "-f", "-", check=False, input=manifest)
    assert result.returncode != 0
    assert 'unknown field "colour"' in result.stderr


def test_server_side_apply_refuses_an_unknown_field(kubectl, widgets):
    result = kubectl("apply", "--server-side", "-f", "-", check=False,
                     input=widget("ssa-widget", "{size: small, colour: red}"))
    assert result.returncode != 0
    assert ".spec.colour: field not declared in schema" in result.stderr


def test_apply_with_validate_false_prunes_an_unknown_field(kubectl, widgets):
    kubectl("apply", "--validate=false", "-f", "-",
            input=widget("pruned-widget", "{size: small, colour: red}"))
    stored = yaml.safe_load(kubectl("get", "widget", "pruned-widget", "-o", "yaml").stdout)
    assert "colour" not in stored["spec"]


def test_explain_of_a_project_kind(kubectl, project_crds):
    output = kubectl("explain", "datasets.spec").stdout
    assert "KIND:       Dataset" in output and "FIELDS:" in output


def test_every_invalid_example_is_refused_by_the_server_with_its_field_named(kubectl, project_crds):
    documents = [doc for doc in yaml.safe_load_all(INVALID_EXAMPLES.read_text()) if doc]
    for document in documents:
        result = kubectl("create", "--dry-run=server", "-f", "-", check=False,
                         input=yaml.safe_dump(document))
        name = document["metadata"]["name"]
        assert result.returncode != 0, f"{name} was accepted"
        expected = document["metadata"]["annotations"]["kadence.dev/expected-field"]
        assert f"{expected}:" in result.stderr, f"{name}: {result.stderr}"
