"""Every example is accepted, every invalid manifest refused with its field named —
by the CRD schemas at admission and by the operator's own validation alike."""

from pathlib import Path

import pytest
import yaml

from kadence.api.crdgen import all_crds
from kadence.api.kinds import BY_KIND
from kadence.api.validation import parse_spec
from kadence.sandbox.apiserver.schema import validate_custom_resource

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in all_crds()}


def kadence_documents(paths):
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["apiVersion"].startswith("kadence.dev/"):
                yield pytest.param(document, id=f"{path.name}:{document['kind']}/{document['metadata']['name']}")


VALID = list(kadence_documents(sorted(EXAMPLES.glob("churn/*.yaml")) + sorted(EXAMPLES.glob("samples/*.yaml"))
                                + sorted(EXAMPLES.glob("batch/*.yaml")) + sorted(EXAMPLES.glob("ray/*.yaml"))
                                + sorted(EXAMPLES.glob("tasks/*.yaml"))))
INVALID = list(kadence_documents([EXAMPLES / "invalid" / "invalid-manifests.yaml"]))


def names_the_field(field: str, message: str, expected: str) -> bool:
    """The error points at the expected field, or at its parent object with the field named in words."""
    if field == expected:
        return True
    if expected.startswith(field + ".") or (field == "spec" and expected.startswith("spec")):
        return expected.rsplit(".", 1)[-1] in message
    return False


def test_the_examples_cover_every_kind():
    assert {doc.values[0]["kind"] for doc in VALID} == set(BY_KIND)


@pytest.mark.parametrize("document", VALID)
def test_every_example_passes_the_crd_schema(document):
    _, causes = validate_custom_resource(CRDS[document["kind"]], document)
    assert causes == []


@pytest.mark.parametrize("document", VALID)
def test_every_example_passes_the_operators_validation(document):
    model, problems = parse_spec(BY_KIND[document["kind"]].spec, document["spec"])
    assert problems == [] and model is not None


@pytest.mark.parametrize("document", INVALID)
def test_every_invalid_manifest_is_refused_by_the_crd_schema_with_the_field_named(document):
    expected = document["metadata"]["annotations"]["kadence.dev/expected-field"]
    _, causes = validate_custom_resource(CRDS[document["kind"]], document)
    assert causes, "accepted by the CRD schema"
    assert any(names_the_field(c.get("field", ""), c.get("message", ""), expected) for c in causes), causes


@pytest.mark.parametrize("document", INVALID)
def test_every_invalid_manifest_is_refused_by_the_operator_with_the_field_named(document):
    expected = document["metadata"]["annotations"]["kadence.dev/expected-field"]
    model, problems = parse_spec(BY_KIND[document["kind"]].spec, document["spec"])
    assert model is None, "accepted by the operator"
    assert any(names_the_field(field, message, expected) for field, message in problems), problems


@pytest.mark.parametrize("example", ["churn", "tasks"])
def test_the_example_data_is_what_its_generator_makes(example):
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_data", EXAMPLES / example / "generate_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (EXAMPLES / example / "00-data.yaml").read_text() == module.render()
