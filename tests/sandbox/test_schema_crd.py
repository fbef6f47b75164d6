"""The checks a CRD must pass before the API server accepts it (names, versions, structural
schema, CEL rules that compile), and the project's own CRDs and examples against them."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from kadence.sandbox.apiserver.schema import (
    crd_with_defaults, validate_crd, validate_crd_update, validate_custom_resource,
)

from .schema_helpers import crd_for

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CRD = Path(__file__).parent / "fixtures" / "schema" / "widgets-crd.yaml"


def base_crd() -> dict[str, Any]:
    return crd_for({"type": "object", "properties": {"size": {"type": "string"}}})


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def change(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    crd = base_crd()
    edit(crd)
    return crd


SCHEMA = "spec.versions[0].schema.openAPIV3Schema"
SPEC = SCHEMA + ".properties[spec]"


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "field": field, "message": message}


CASES = [
    ("a_field_without_type_is_not_structural",
     lambda c: spec_schema(c)["properties"].update(size={"description": "untyped"}),
     [cause("FieldValueRequired", SPEC + ".properties[size].type",
            "Required value: must not be empty for specified object fields")]),
    ("array_items_without_type_are_not_structural",
     lambda c: spec_schema(c)["properties"].update(tags={"type": "array", "items": {}}),
     [cause("FieldValueRequired", SPEC + ".properties[tags].items.type",
            "Required value: must not be empty for specified array items")]),
    ("preserve_unknown_fields_and_int_or_string_need_no_type",
     lambda c: spec_schema(c)["properties"].update(
         free={"x-kubernetes-preserve-unknown-fields": True},
         port={"x-kubernetes-int-or-string": True}), []),
    ("a_ref_is_not_supported",
     lambda c: spec_schema(c)["properties"].update(size={"type": "string", "$ref": "#/x"}),
     [cause("FieldValueForbidden", SPEC + ".properties[size].$ref", "Forbidden: $ref is not supported")]),
    ("unique_items_is_forbidden",
     lambda c: spec_schema(c)["properties"].update(
         tags={"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
     [cause("FieldValueForbidden", SPEC + ".properties[tags].uniqueItems",
            "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic")]),
    ("additional_properties_false_is_forbidden",
     lambda c: spec_schema(c).update(additionalProperties=False),
     [cause("FieldValueForbidden", SPEC + ".additionalProperties",
            "Forbidden: additionalProperties cannot be set to false"),
      cause("FieldValueForbidden", SPEC + ".additionalProperties",
            "Forbidden: additionalProperties and properties are mutual exclusive")]),
    ("additional_properties_and_properties_together_are_forbidden",
     lambda c: spec_schema(c).update(additionalProperties={"type": "string"}),
     [cause("FieldValueForbidden", SPEC + ".additionalProperties",
            "Forbidden: additionalProperties and properties are mutual exclusive")]),
    ("preserve_unknown_fields_false_is_invalid",
     lambda c: spec_schema(c).update({"x-kubernetes-preserve-unknown-fields": False}),
     [cause("FieldValueInvalid", SPEC + ".x-kubernetes-preserve-unknown-fields",
            "Invalid value: false: must be true or undefined")]),
    ("the_root_must_be_an_object",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(type="string"),
     [cause("FieldValueInvalid", SCHEMA + ".type", 'Invalid value: "string": must be object at the root')]),
    ("metadata_may_only_constrain_name_and_generate_name",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update(
         metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
     [cause("FieldValueForbidden", SCHEMA + ".properties[metadata]",
            "Forbidden: must not specify anything other than name and generateName, but "
            "metadata is implicitly specified")]),
    ("metadata_name_constraints_are_allowed",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update(
         metadata={"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}),
     []),
    ("an_unknown_type_is_not_supported",
     lambda c: spec_schema(c)["properties"].update(size={"type": "text"}),
     [cause("FieldValueNotSupported", SPEC + ".properties[size].type",
            'Unsupported value: "text": supported values: "array", "boolean", "integer", "number", '
            '"object", "string"')]),
    ("a_type_inside_any_of_is_not_structural",
     lambda c: spec_schema(c)["properties"].update(
         size={"type": "string", "anyOf": [{"type": "string", "maxLength": 3}]}),
     [cause("FieldValueForbidden", SPEC + ".properties[size].anyOf[0].type",
            "Forbidden: must be empty to be structural")]),
    ("int_or_string_may_spell_out_its_any_of_types",
     lambda c: spec_schema(c)["properties"].update(port={
         "x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}],
         "pattern": "^[0-9]+%?$"}), []),
    ("value_validations_inside_any_of_are_fine",
     lambda c: spec_schema(c)["properties"].update(
         size={"type": "string", "anyOf": [{"maxLength": 3}, {"pattern": "^x"}]}), []),
    ("a_map_list_needs_map_keys",
     lambda c: spec_schema(c)["properties"].update(items={
         "type": "array", "x-kubernetes-list-type": "map",
         "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
     [cause("FieldValueRequired", SPEC + ".properties[items].x-kubernetes-list-map-keys",
            "Required value: must not be empty if x-kubernetes-list-type is map")]),
    ("map_keys_must_be_item_properties",
     lambda c: spec_schema(c)["properties"].update(items={
         "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
         "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
     [cause("FieldValueInvalid", SPEC + ".properties[items].x-kubernetes-list-map-keys",
            'Invalid value: []interface {}{"id"}: entries must all be names of item properties')]),
    ("map_keys_must_be_required_or_defaulted",
     lambda c: spec_schema(c)["properties"].update(items={
         "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
         "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
     [cause("FieldValueRequired", SPEC + ".properties[items].items.properties[name].default",
            "Required value: this property is in x-kubernetes-list-map-keys, so it must have a "
            "default or be a required property")]),
    ("an_unknown_list_type_is_not_supported",
     lambda c: spec_schema(c)["properties"].update(tags={
         "type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}),
     [cause("FieldValueNotSupported", SPEC + ".properties[tags].x-kubernetes-list-type",
            'Unsupported value: "bag": supported values: "atomic", "set", "map"')]),
    ("a_default_that_breaks_the_schema_is_invalid",
     lambda c: spec_schema(c)["properties"].update(replicas={
         "type": "integer", "minimum": 1, "default": 0}),
     [cause("FieldValueInvalid", SPEC + ".properties[replicas].default",
            "Invalid value: 0:  in body should be greater than or equal to 1")]),
    ("a_default_with_unknown_fields_is_invalid",
     lambda c: spec_schema(c)["properties"].update(opts={
         "type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": "x"}}),
     [cause("FieldValueInvalid", SPEC + ".properties[opts].default",
            'Invalid value: map[string]interface {}{"b":"x"}: must not have unknown fields')]),
    ("a_cel_rule_naming_an_undeclared_field_does_not_compile",
     lambda c: spec_schema(c).update({"x-kubernetes-validations": [{"rule": "self.colour == 'red'"}]}),
     [cause("FieldValueInvalid", SPEC + ".x-kubernetes-validations[0].rule",
            'Invalid value: apiextensions.ValidationRule{Rule:"self.colour == \'red\'", '
            'Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), '
            'FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: '
            "undefined field 'colour'\n | self.colour == 'red'\n | ....^")]),
    ("a_rule_reason_must_be_a_field_error_type",
     lambda c: spec_schema(c).update({"x-kubernetes-validations": [
         {"rule": "has(self.size)", "reason": "Oops"}]}),
     [cause("FieldValueNotSupported", SPEC + ".x-kubernetes-validations[0].reason",
            'Unsupported value: "Oops": supported values: "FieldValueDuplicate", '
            '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"')]),
    ("a_rule_field_path_must_exist",
     lambda c: spec_schema(c).update({"x-kubernetes-validations": [
         {"rule": "has(self.size)", "fieldPath": ".colour"}]}),
     [cause("FieldValueInvalid", SPEC + ".x-kubernetes-validations[0].fieldPath",
            'Invalid value: ".colour": fieldPath must be a valid path')]),
    ("additional_properties_at_the_root_are_forbidden",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(
         properties={}, additionalProperties={"type": "string"}),
     [cause("FieldValueForbidden", SCHEMA + ".additionalProperties",
            "Forbidden: must not be used at the root")]),
    ("a_description_inside_a_junctor_is_not_structural",
     lambda c: spec_schema(c)["properties"].update(
         size={"type": "string", "oneOf": [{"description": "short", "maxLength": 3}]}),
     [cause("FieldValueForbidden", SPEC + ".properties[size].oneOf[0].description",
            "Forbidden: must be empty to be structural")]),
    ("a_junctor_may_not_name_a_field_the_structure_lacks",
     lambda c: spec_schema(c).update(anyOf=[{"required": ["colour"],
                                             "properties": {"colour": {"maxLength": 3}}}]),
     [cause("FieldValueRequired", SPEC + ".properties[colour]",
            "Required value: because it is defined in " + SPEC + ".anyOf[0].properties[colour]")]),
    ("metadata_may_not_be_reasoned_about_inside_a_junctor",
     lambda c: spec_schema(c)["properties"].update(metadata={
         "type": "object", "x-kubernetes-preserve-unknown-fields": True,
         "allOf": [{"properties": {"metadata": {"maxProperties": 1}}}]}),
     [cause("FieldValueForbidden", SPEC + ".properties[metadata].allOf[0].properties[metadata]",
            "Forbidden: must not be specified in a nested context"),
      cause("FieldValueRequired", SPEC + ".properties[metadata].properties[metadata]",
            "Required value: because it is defined in " + SPEC
            + ".properties[metadata].allOf[0].properties[metadata]")]),
    ("a_pattern_go_cannot_compile_is_invalid",
     lambda c: spec_schema(c)["properties"].update(size={"type": "string", "pattern": "^(?!x)"}),
     [cause("FieldValueInvalid", SPEC + ".properties[size].pattern",
            'Invalid value: "^(?!x)": must be a valid regular expression, but isn\'t: error '
            "parsing regexp: invalid or unsupported Perl syntax: `(?!`")]),
    ("an_embedded_resource_needs_properties_or_preserved_fields",
     lambda c: spec_schema(c)["properties"].update(template={
         "type": "object", "x-kubernetes-embedded-resource": True}),
     [cause("FieldValueRequired", SPEC + ".properties[template].properties",
            "Required value: must not be empty if x-kubernetes-embedded-resource is true "
            "without x-kubernetes-preserve-unknown-fields")]),
    ("map_keys_need_a_map_list",
     lambda c: spec_schema(c)["properties"].update(items={
         "type": "array", "x-kubernetes-list-map-keys": ["name"],
         "items": {"type": "object", "required": ["name"],
                   "properties": {"name": {"type": "string"}}}}),
     [cause("FieldValueRequired", SPEC + ".properties[items].x-kubernetes-list-type",
            "Required value: must be map if x-kubernetes-list-map-keys is non-empty")]),
    ("a_list_type_needs_an_array",
     lambda c: spec_schema(c)["properties"].update(size={
         "type": "string", "x-kubernetes-list-type": "set"}),
     [cause("FieldValueInvalid", SPEC + ".properties[size].type",
            'Invalid value: "string": must be array if x-kubernetes-list-type is specified')]),
    ("a_default_must_pass_the_rules_of_its_field",
     lambda c: spec_schema(c)["properties"].update(replicas={
         "type": "integer", "default": 0,
         "x-kubernetes-validations": [{"rule": "self >= 1"}]}),
     [cause("FieldValueInvalid", SPEC + ".properties[replicas].default",
            'Invalid value: "integer": failed rule: self >= 1')]),
    ("a_default_in_top_level_metadata_is_forbidden",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update(
         metadata={"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}),
     [cause("FieldValueForbidden", SCHEMA + ".properties[metadata].properties[name].default",
            "Forbidden: must not be set in top-level metadata")]),
    ("the_name_must_be_plural_dot_group",
     lambda c: c["metadata"].update(name="thing.test.kadence.dev"),
     [cause("FieldValueInvalid", "metadata.name",
            'Invalid value: "thing.test.kadence.dev": must be spec.names.plural+"."+spec.group')]),
    ("a_group_needs_a_dot",
     lambda c: (c["spec"].update(group="test"), c["metadata"].update(name="things.test")),
     [cause("FieldValueInvalid", "spec.group",
            'Invalid value: "test": should be a domain with at least one dot')]),
    ("kind_and_list_kind_may_not_be_the_same",
     lambda c: c["spec"]["names"].update(listKind="Thing"),
     [cause("FieldValueInvalid", "spec.names.listKind",
            'Invalid value: "Thing": kind and listKind may not be the same')]),
    ("a_plural_must_be_a_dns_label",
     lambda c: (c["spec"]["names"].update(plural="Things"),
                c["metadata"].update(name="Things.test.kadence.dev")),
     [cause("FieldValueInvalid", "metadata.name",
            'Invalid value: "Things.test.kadence.dev": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
      cause("FieldValueInvalid", "spec.names.plural",
            'Invalid value: "Things": a DNS-1035 label must consist of lower case alphanumeric '
            "characters or '-', start with an alphabetic character, and end with an alphanumeric "
            "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')")]),
    ("a_short_name_must_be_a_dns_label",
     lambda c: c["spec"]["names"].update(shortNames=["th_1"]),
     [cause("FieldValueInvalid", "spec.names.shortNames[0]",
            'Invalid value: "th_1": a DNS-1035 label must consist of lower case alphanumeric '
            "characters or '-', start with an alphabetic character, and end with an alphanumeric "
            "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')")]),
    ("the_scope_is_cluster_or_namespaced",
     lambda c: c["spec"].update(scope="Global"),
     [cause("FieldValueNotSupported", "spec.scope",
            'Unsupported value: "Global": supported values: "Cluster", "Namespaced"')]),
    ("exactly_one_storage_version",
     lambda c: c["spec"]["versions"].append({**copy.deepcopy(c["spec"]["versions"][0]), "name": "v2"}),
     [cause("FieldValueInvalid", "spec.versions",
            'Invalid value: []interface {}{"v1", "v2"}: must have exactly one version marked as '
            "storage version")]),
    ("a_version_needs_a_schema",
     lambda c: c["spec"]["versions"][0].pop("schema"),
     [cause("FieldValueRequired", "spec.versions[0].schema.openAPIV3Schema",
            "Required value: schemas are required")]),
    ("printer_column_types_are_limited",
     lambda c: c["spec"]["versions"][0].update(additionalPrinterColumns=[
         {"name": "Size", "type": "text", "jsonPath": ".spec.size"}]),
     [cause("FieldValueNotSupported", "spec.versions[0].additionalPrinterColumns[0].type",
            'Unsupported value: "text": supported values: "boolean", "date", "integer", '
            '"number", "string"')]),
]


@pytest.mark.parametrize(("edit", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_crd_check(edit, expected):
    assert validate_crd(change(edit)) == expected


RULE_SYNTAX_CASES = [
    ("a_cel_rule_with_a_syntax_error_does_not_compile",
     {"rule": "self.size =="}, "rule",
     'apiextensions.ValidationRule{Rule:"self.size ==", Message:"", MessageExpression:"", '
     'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", '
     "OptionalOldSelf:(*bool)(nil)}"),
    ("a_message_expression_with_a_syntax_error_does_not_compile",
     {"rule": "has(self.size)", "messageExpression": "'a' +", "reason": "FieldValueForbidden"},
     "messageExpression",
     'apiextensions.ValidationRule{Rule:"has(self.size)", Message:"", MessageExpression:"\'a\' +", '
     'Reason:(*apiextensions.FieldValueErrorReason)("FieldValueForbidden"), FieldPath:"", '
     "OptionalOldSelf:(*bool)(nil)}"),
]


@pytest.mark.parametrize(("rule", "key", "printed_rule"), [case[1:] for case in RULE_SYNTAX_CASES],
                         ids=[case[0] for case in RULE_SYNTAX_CASES])
def test_a_cel_syntax_error_is_reported_at_the_expression(rule, key, printed_rule):
    causes = validate_crd(change(lambda c: spec_schema(c).update(
        {"x-kubernetes-validations": [rule]})))
    assert len(causes) == 1
    assert causes[0]["field"] == f"{SPEC}.x-kubernetes-validations[0].{key}"
    prefix = "compilation failed" if key == "rule" else "messageExpression compilation failed"
    # cel-go's layout; the column and the words after "Syntax error" are cel-python's.
    assert causes[0]["message"].startswith(
        f"Invalid value: {printed_rule}: {prefix}: ERROR: <input>:1:")
    assert "Syntax error: mismatched input" in causes[0]["message"]
    assert causes[0]["message"].endswith(f"\n | {rule[key]}\n | " + "." * (
        int(causes[0]["message"].split("<input>:1:")[1].split(":")[0]) - 1) + "^")


def test_the_base_crd_and_the_fixture_crd_are_acceptable():
    assert validate_crd(base_crd()) == []
    assert validate_crd(yaml.safe_load(FIXTURE_CRD.read_text())) == []


def test_the_apiserver_defaults_singular_and_list_kind():
    crd = base_crd()
    del crd["spec"]["names"]["singular"]
    names = crd_with_defaults(crd)["spec"]["names"]
    assert (names["singular"], names["listKind"]) == ("thing", "ThingList")


# ---- the project's CRDs and examples ----------------------------------------------------

PROJECT_CRDS = sorted((REPO / "crds").glob("*.yaml"))
EXAMPLE_FILES = sorted(
    path for path in (REPO / "examples").rglob("*.yaml")
    if "invalid" not in path.name and "invalid" not in path.parent.name)
INVALID_FILES = sorted(
    path for path in (REPO / "examples").rglob("*.yaml")
    if "invalid" in path.name or "invalid" in path.parent.name)


@functools.lru_cache(maxsize=1)
def project_crds() -> dict[tuple[str, str], dict[str, Any]]:
    crds = {}
    for path in PROJECT_CRDS:
        crd = yaml.safe_load(path.read_text())
        crds[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return crds


@functools.lru_cache(maxsize=4)
def _custom_objects(paths: tuple[Path, ...]) -> list[tuple[str, dict[str, Any]]]:
    crds = project_crds()
    found = []
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if not document:
                continue
            group = document["apiVersion"].rsplit("/", 1)[0]
            if (group, document["kind"]) in crds:
                found.append((f"{path.name}:{document['metadata']['name']}", document))
    return found


def custom_objects(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    return copy.deepcopy(_custom_objects(tuple(paths)))


@pytest.mark.parametrize("path", PROJECT_CRDS, ids=lambda p: p.name)
def test_a_project_crd_is_acceptable(path):
    assert validate_crd(yaml.safe_load(path.read_text())) == []


def test_there_are_eight_project_crds():
    assert len(PROJECT_CRDS) == 8


@pytest.mark.parametrize(("name", "document"), custom_objects(EXAMPLE_FILES),
                         ids=[name for name, _ in custom_objects(EXAMPLE_FILES)])
def test_an_example_is_valid(name, document):
    crd = project_crds()[(document["apiVersion"].rsplit("/", 1)[0], document["kind"])]
    assert validate_custom_resource(crd, document)[1] == []


@pytest.mark.parametrize(("name", "document"), custom_objects(INVALID_FILES),
                         ids=[name for name, _ in custom_objects(INVALID_FILES)])
def test_an_invalid_example_is_refused_with_its_field_named(name, document):
    crd = project_crds()[(document["apiVersion"].rsplit("/", 1)[0], document["kind"])]
    causes = validate_custom_resource(crd, document)[1]
    assert causes, f"{name} was accepted"
    expected = (document["metadata"].get("annotations") or {}).get("kadence.dev/expected-field")
    if expected:
        assert expected in [cause["field"] for cause in causes]


def test_an_error_in_a_map_value_names_the_key_in_brackets_as_the_apiserver_does():
    """CEL errors under additionalProperties are at `fldPath.Key(k)`: `space[max_depth]`."""
    crd = project_crds()[("kadence.dev", "TrainingRun")]
    document = dict(custom_objects(INVALID_FILES))["invalid-manifests.yaml:range-upside-down"]
    fields = [cause["field"] for cause in validate_custom_resource(crd, document)[1]]
    assert fields == ["spec.search.families[0].space[max_depth]"]


def test_a_root_rule_may_select_the_implicit_metadata_name():
    def edit(crd):
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
            {"rule": "self.metadata.name.startsWith('t') && self.kind == 'Thing'"}]
    assert validate_crd(change(edit)) == []


def test_a_rule_may_select_any_key_of_a_map():
    assert validate_crd(change(lambda c: spec_schema(c)["properties"].update(labels={
        "type": "object", "additionalProperties": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.team == 'ml'"}]}))) == []


@pytest.mark.parametrize(("field_path", "valid"), [
    (".size", True), (".labels['a.b']", True), (".labels.team", True),
    ("size", False), (".colour", False), (".size.deeper", False),
])
def test_a_rule_field_path_must_start_with_a_dot_and_name_a_field(field_path, valid):
    def edit(crd):
        spec_schema(crd)["properties"]["labels"] = {
            "type": "object", "additionalProperties": {"type": "string"}}
        spec_schema(crd)["x-kubernetes-validations"] = [
            {"rule": "has(self.size)", "fieldPath": field_path}]
    causes = validate_crd(change(edit))
    assert (causes == []) == valid, causes


# ---- robustness: any JSON gives causes, never an exception ---------------------------------

_KEYWORDS = ["type", "properties", "items", "additionalProperties", "required", "enum",
             "default", "x-kubernetes-validations", "x-kubernetes-list-type",
             "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields",
             "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource", "anyOf", "allOf",
             "not", "pattern", "metadata", "rule", "fieldPath", "maxLength", "names", "versions",
             "schema", "openAPIV3Schema", "name", "plural", "kind", "spec"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3)
    | st.sampled_from(["object", "array", "string", "map", "set", "self.x > 1", ".name", "x"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(_KEYWORDS), children, max_size=4),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=_JSON, top=_JSON)
def test_any_json_schema_or_crd_gives_causes_and_never_raises(schema, top):
    crd = base_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = schema
    for candidate in (crd, top if isinstance(top, dict) else {"spec": top}):
        for found in validate_crd(candidate):
            assert set(found) == {"reason", "message", "field"}


def test_a_root_rule_sees_only_name_and_generate_name_of_metadata():
    def edit(crd):
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
            {"rule": "has(self.metadata.labels)"}]
    [found] = validate_crd(change(edit))
    assert found["field"] == SCHEMA + ".x-kubernetes-validations[0].rule"
    assert "compilation failed: ERROR: <input>:1:18: undefined field 'labels'" in found["message"]


def established(crd: dict[str, Any]) -> dict[str, Any]:
    crd = copy.deepcopy(crd)
    crd["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    return crd


@pytest.mark.parametrize(("edit", "old_is_established", "expected"), [
    (lambda c: c["spec"]["versions"][0].update(served=True), True, []),
    (lambda c: c["spec"].update(scope="Cluster"), True,
     [cause("FieldValueInvalid", "spec.scope", 'Invalid value: "Cluster": field is immutable')]),
    (lambda c: c["spec"].update(scope="Cluster"), False, []),
    (lambda c: c["spec"]["names"].update(kind="Thingy", listKind="ThingyList"), True,
     [cause("FieldValueInvalid", "spec.names.kind", 'Invalid value: "Thingy": field is immutable')]),
], ids=["an_unchanged_crd_may_be_updated",
        "the_scope_of_an_established_crd_is_immutable",
        "the_scope_of_a_crd_not_yet_established_may_change",
        "the_kind_of_an_established_crd_is_immutable"])
def test_crd_update(edit, old_is_established, expected):
    old = established(base_crd()) if old_is_established else base_crd()
    assert validate_crd_update(change(edit), old) == expected
