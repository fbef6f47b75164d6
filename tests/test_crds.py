"""The CRDs: generated from the pydantic models, structural, valid Kubernetes objects."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kadence.api.crdgen import all_crds, crd_file_name, render
from kadence.api.kinds import KINDS

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = REPO / "crds"


def openapi(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict, path: str):
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_the_committed_crd_is_what_the_models_generate(kind):
    committed = yaml.safe_load((CRD_DIR / crd_file_name(kind)).read_text())
    generated = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind.kind)
    assert committed == generated, "crds/ is stale: run `kadence crds --write crds/`"


def test_crds_directory_holds_exactly_one_file_per_kind():
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(crd_file_name(k) for k in KINDS)


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_schema_node_is_typed_unless_it_deliberately_preserves_unknown_fields(crd):
    for path, node in walk(openapi(crd), "root"):
        typed = "type" in node
        deliberate = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert typed or deliberate, f"{path} has no type"
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title", "additionalProperties"):
            if forbidden == "additionalProperties":
                assert not (node.get(forbidden) is not None and "properties" in node), f"{path}: both set"
            else:
                assert forbidden not in node, f"{path} uses {forbidden}"


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_preserved_unknown_fields_are_only_where_we_mean_them(crd):
    preserved = [path for path, node in walk(openapi(crd), "root")
                 if node.get("x-kubernetes-preserve-unknown-fields")]
    allowed = ("root.metadata", "choices[]", "spec.params", "space{}", "lineage.ensemble[].params")
    for path in preserved:
        assert path == "root.metadata" or path.endswith(allowed), f"unexpected free-form field {path}"


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_crd_is_a_valid_kubernetes_object(crd):
    kubernetes_validate.validate(crd, kubernetes_validate.utils.latest_version(), strict=True)


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_crd_has_status_conditions_printer_columns_short_names_and_the_kadence_category(crd):
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert names["categories"] == ["kadence"]
    assert names["shortNames"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= columns
    status = openapi(crd)["properties"]["status"]["properties"]
    condition = status["conditions"]["items"]["properties"]
    assert set(condition) >= {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert "observedGeneration" in status


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_printer_column_points_at_a_field_the_schema_declares(crd):
    schema = openapi(crd)
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[?")[0].strip(".").split(".")
        node = schema
        for part in path:
            if node.get("type") == "array":
                node = node["items"]
            assert part in node.get("properties", {}) or part in ("metadata", "creationTimestamp"), column
            if part in ("metadata", "creationTimestamp"):
                break
            node = node["properties"][part]


def test_the_rendered_stream_has_eight_documents():
    stream = "---\n".join(render(c) for c in all_crds())
    assert len(list(yaml.safe_load_all(stream))) == 8
