"""Validation of custom objects against their CRD's openAPIV3Schema, keyword by keyword, with
kube-apiserver's exact causes (reason, message, field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from kadence.sandbox.apiserver.schema import validate_custom_resource
from kadence.sandbox.apiserver.schema.causes import go_float, go_sharp_v

from .schema_helpers import crd_for, thing


def causes_of(spec_schema: dict[str, Any], spec: Any) -> list[dict[str, str]]:
    _, causes = validate_custom_resource(crd_for(spec_schema), thing(spec))
    return causes


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **extra}


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "field": field, "message": message}


# (name, spec schema, spec value, expected causes)
CASES = [
    ("a_string_for_an_integer_is_a_type_error_naming_the_json_type",
     obj({"replicas": {"type": "integer"}}), {"replicas": "three"},
     [cause("FieldValueTypeInvalid", "spec.replicas",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"')]),
    ("a_fractional_number_for_an_integer_is_a_type_error",
     obj({"replicas": {"type": "integer"}}), {"replicas": 1.5},
     [cause("FieldValueTypeInvalid", "spec.replicas",
            'Invalid value: "number": spec.replicas in body must be of type integer: "number"')]),
    ("a_whole_float_is_accepted_for_an_integer",
     obj({"replicas": {"type": "integer"}}), {"replicas": 2.0}, []),
    ("an_integer_is_accepted_for_a_number",
     obj({"ratio": {"type": "number"}}), {"ratio": 1}, []),
    ("a_boolean_for_a_string_is_a_type_error",
     obj({"name": {"type": "string"}}), {"name": True},
     [cause("FieldValueTypeInvalid", "spec.name",
            'Invalid value: "boolean": spec.name in body must be of type string: "boolean"')]),
    ("an_object_for_an_array_is_a_type_error",
     obj({"tags": {"type": "array", "items": {"type": "string"}}}), {"tags": {"a": "b"}},
     [cause("FieldValueTypeInvalid", "spec.tags",
            'Invalid value: "object": spec.tags in body must be of type array: "object"')]),
    ("a_wrong_item_type_names_the_item_index",
     obj({"tags": {"type": "array", "items": {"type": "string"}}}), {"tags": ["a", 5]},
     [cause("FieldValueTypeInvalid", "spec.tags[1]",
            'Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"')]),
    ("int_or_string_takes_either",
     obj({"port": {"x-kubernetes-int-or-string": True}}), {"port": "http"}, []),
    ("int_or_string_refuses_a_boolean",
     obj({"port": {"x-kubernetes-int-or-string": True}}), {"port": True},
     [cause("FieldValueTypeInvalid", "spec.port",
            'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"')]),
    ("a_missing_required_field_is_named",
     obj({"size": {"type": "string"}}, required=["size"]), {},
     [cause("FieldValueRequired", "spec.size", "Required value")]),
    ("a_missing_required_field_deep_in_a_list_is_named_with_its_index",
     obj({"items": {"type": "array", "items": obj({"name": {"type": "string"}},
                                                  required=["name"])}}),
     {"items": [{"name": "x"}, {}]},
     [cause("FieldValueRequired", "spec.items[1].name", "Required value")]),
    ("a_value_outside_the_enum_lists_the_supported_values",
     obj({"size": {"type": "string", "enum": ["a", "b"]}}), {"size": "foo"},
     [cause("FieldValueNotSupported", "spec.size",
            'Unsupported value: "foo": supported values: "a", "b"')]),
    ("a_numeric_enum_quotes_the_supported_values_as_json",
     obj({"level": {"type": "integer", "enum": [1, 2]}}), {"level": 3},
     [cause("FieldValueNotSupported", "spec.level",
            'Unsupported value: 3: supported values: "1", "2"')]),
    ("a_value_in_the_enum_is_accepted",
     obj({"size": {"type": "string", "enum": ["a", "b"]}}), {"size": "b"}, []),
    ("a_string_not_matching_the_pattern_shows_the_pattern",
     obj({"name": {"type": "string", "pattern": "^[a-z]+$"}}), {"name": "Abc"},
     [cause("FieldValueInvalid", "spec.name",
            "Invalid value: \"Abc\": spec.name in body should match '^[a-z]+$'")]),
    ("the_pattern_is_searched_not_anchored",
     obj({"name": {"type": "string", "pattern": "[0-9]"}}), {"name": "abc1def"}, []),
    ("a_number_below_minimum",
     obj({"replicas": {"type": "integer", "minimum": 0}}), {"replicas": -1},
     [cause("FieldValueInvalid", "spec.replicas",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0")]),
    ("a_number_at_an_exclusive_minimum",
     obj({"ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True}}), {"ratio": 0},
     [cause("FieldValueInvalid", "spec.ratio",
            "Invalid value: 0: spec.ratio in body should be greater than 0")]),
    ("a_number_above_maximum",
     obj({"ratio": {"type": "number", "maximum": 1}}), {"ratio": 1.5},
     [cause("FieldValueInvalid", "spec.ratio",
            "Invalid value: 1.5: spec.ratio in body should be less than or equal to 1")]),
    ("a_number_at_an_exclusive_maximum",
     obj({"ratio": {"type": "number", "maximum": 0.5, "exclusiveMaximum": True}}), {"ratio": 0.5},
     [cause("FieldValueInvalid", "spec.ratio",
            "Invalid value: 0.5: spec.ratio in body should be less than 0.5")]),
    ("a_number_not_a_multiple",
     obj({"step": {"type": "integer", "multipleOf": 5}}), {"step": 7},
     [cause("FieldValueInvalid", "spec.step",
            "Invalid value: 7: spec.step in body should be a multiple of 5")]),
    ("a_string_longer_than_max_length_is_too_long",
     obj({"name": {"type": "string", "maxLength": 3}}), {"name": "abcd"},
     [cause("FieldValueTooLong", "spec.name", "Too long: may not be more than 3 bytes")]),
    ("max_length_counts_characters_not_bytes",
     obj({"name": {"type": "string", "maxLength": 3}}), {"name": "äöü"}, []),
    ("only_the_first_failing_string_rule_is_reported",
     obj({"name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"}}), {"name": "ABCDE"},
     [cause("FieldValueTooLong", "spec.name", "Too long: may not be more than 3 bytes")]),
    ("a_format_is_checked_besides_the_string_rules",
     obj({"at": {"type": "string", "minLength": 30, "format": "date"}}), {"at": "soon"},
     [cause("FieldValueInvalid", "spec.at",
            'Invalid value: "soon": spec.at in body should be at least 30 chars long'),
      cause("FieldValueTypeInvalid", "spec.at",
            'Invalid value: "soon": spec.at in body must be of type date: "soon"')]),
    ("an_integer_is_compared_with_the_bound_truncated_as_go_does",
     obj({"n": {"type": "integer", "minimum": 1.5}}), {"n": 0},
     [cause("FieldValueInvalid", "spec.n",
            "Invalid value: 0: spec.n in body should be greater than or equal to 1")]),
    ("minimum_is_reported_before_maximum",
     obj({"n": {"type": "number", "minimum": 5, "maximum": 1}}), {"n": 3.5},
     [cause("FieldValueInvalid", "spec.n",
            "Invalid value: 3.5: spec.n in body should be greater than or equal to 5"),
      cause("FieldValueInvalid", "spec.n",
            "Invalid value: 3.5: spec.n in body should be less than or equal to 1")]),
    ("a_fraction_not_a_multiple",
     obj({"n": {"type": "number", "multipleOf": 0.5}}), {"n": 1.25},
     [cause("FieldValueInvalid", "spec.n",
            "Invalid value: 1.25: spec.n in body should be a multiple of 0.5")]),
    ("null_outside_a_nullable_enum",
     obj({"size": {"type": "string", "nullable": True, "enum": ["a"]}}), {"size": None},
     [cause("FieldValueNotSupported", "spec.size",
            'Unsupported value: "null": supported values: "a"')]),
    ("a_string_shorter_than_min_length",
     obj({"name": {"type": "string", "minLength": 3}}), {"name": "ab"},
     [cause("FieldValueInvalid", "spec.name",
            'Invalid value: "ab": spec.name in body should be at least 3 chars long')]),
    ("too_few_items",
     obj({"tags": {"type": "array", "minItems": 2, "items": {"type": "string"}}}), {"tags": ["a"]},
     [cause("FieldValueInvalid", "spec.tags",
            "Invalid value: 1: spec.tags in body should have at least 2 items")]),
    ("too_many_items",
     obj({"tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}}}),
     {"tags": ["a", "b"]},
     [cause("FieldValueTooMany", "spec.tags", "Too many: 2: must have at most 1 item")]),
    ("duplicate_items_where_unique_items_are_required",
     obj({"tags": {"type": "array", "uniqueItems": True, "items": {"type": "integer"}}}),
     {"tags": [1, 2, 1]},
     [cause("FieldValueInvalid", "spec.tags",
            "Invalid value: \"\": spec.tags in body shouldn't contain duplicates")]),
    ("too_few_properties",
     obj({"labels": {"type": "object", "minProperties": 1,
                     "additionalProperties": {"type": "string"}}}), {"labels": {}},
     [cause("FieldValueInvalid", "spec.labels",
            "Invalid value: 0: spec.labels in body should have at least 1 properties")]),
    ("too_many_properties",
     obj({"labels": {"type": "object", "maxProperties": 1,
                     "additionalProperties": {"type": "string"}}}), {"labels": {"a": "1", "b": "2"}},
     [cause("FieldValueTooMany", "spec.labels", "Too many: 2: must have at most 1 item")]),
    ("a_map_value_is_validated_by_additional_properties_and_named_by_key",
     obj({"labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 2}}}),
     {"labels": {"ok": "1", "bad": "123"}},
     [cause("FieldValueTooLong", "spec.labels.bad", "Too long: may not be more than 2 bytes")]),
    ("an_invalid_date_time",
     obj({"at": {"type": "string", "format": "date-time"}}), {"at": "yesterday"},
     [cause("FieldValueTypeInvalid", "spec.at",
            'Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday"')]),
    ("a_valid_date_time",
     obj({"at": {"type": "string", "format": "date-time"}}), {"at": "2026-01-02T03:04:05Z"}, []),
    ("a_date_time_with_an_offset_and_fraction",
     obj({"at": {"type": "string", "format": "date-time"}}),
     {"at": "2026-01-02T03:04:05.123+02:00"}, []),
    ("an_invalid_duration",
     obj({"every": {"type": "string", "format": "duration"}}), {"every": "soon"},
     [cause("FieldValueTypeInvalid", "spec.every",
            'Invalid value: "soon": spec.every in body must be of type duration: "soon"')]),
    ("go_and_worded_durations_are_valid",
     obj({"a": {"type": "string", "format": "duration"},
          "b": {"type": "string", "format": "duration"}}), {"a": "1h30m", "b": "3 days"}, []),
    ("bytes_must_be_base64",
     obj({"payload": {"type": "string", "format": "byte"}}), {"payload": "not base64!"},
     [cause("FieldValueTypeInvalid", "spec.payload",
            'Invalid value: "not base64!": spec.payload in body must be of type byte: "not base64!"')]),
    ("int32_is_not_range_checked_as_the_apiserver_does_not",
     obj({"n": {"type": "integer", "format": "int32"}}), {"n": 2 ** 40}, []),
    ("an_unknown_format_is_ignored",
     obj({"n": {"type": "string", "format": "k8s-something"}}), {"n": "anything"}, []),
    ("null_for_a_nullable_field_is_kept_and_valid",
     obj({"note": {"type": "string", "nullable": True}}), {"note": None}, []),
    ("null_in_a_list_of_non_nullable_items_is_a_type_error",
     obj({"tags": {"type": "array", "items": {"type": "string"}}}), {"tags": ["a", None]},
     [cause("FieldValueTypeInvalid", "spec.tags[1]",
            'Invalid value: "null": spec.tags[1] in body must be of type string: "null"')]),
    ("a_set_list_refuses_duplicates",
     obj({"tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}),
     {"tags": ["a", "b", "a"]},
     [cause("FieldValueDuplicate", "spec.tags[2]", 'Duplicate value: "a"')]),
    ("a_map_list_refuses_two_items_with_the_same_keys",
     obj({"ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name", "port"],
                    "items": obj({"name": {"type": "string"}, "port": {"type": "integer"},
                                  "note": {"type": "string"}}, required=["name", "port"])}}),
     {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2},
                {"name": "a", "port": 1, "note": "again"}]},
     [cause("FieldValueDuplicate", "spec.ports[2]",
            'Duplicate value: map[string]interface {}{"name":"a", "port":1}')]),
    ("one_of_with_no_branch_matching",
     obj({"a": {"type": "string"}, "b": {"type": "string"}},
         oneOf=[{"required": ["a"]}, {"required": ["b"]}]), {},
     [cause("FieldValueInvalid", "<nil>",
            'Invalid value: "": "spec" must validate one and only one schema (oneOf). Found none valid'),
      cause("FieldValueRequired", "spec.a", "Required value")]),
    ("one_of_with_two_branches_matching",
     obj({"a": {"type": "string"}, "b": {"type": "string"}},
         oneOf=[{"required": ["a"]}, {"required": ["b"]}]), {"a": "x", "b": "y"},
     [cause("FieldValueInvalid", "<nil>",
            'Invalid value: "": "spec" must validate one and only one schema (oneOf). '
            "Found 2 valid alternatives")]),
    ("one_of_with_one_branch_matching",
     obj({"a": {"type": "string"}, "b": {"type": "string"}},
         oneOf=[{"required": ["a"]}, {"required": ["b"]}]), {"b": "y"}, []),
    ("any_of_with_no_branch_matching",
     obj({"n": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]}}), {"n": 5},
     [cause("FieldValueInvalid", "<nil>",
            'Invalid value: "": "spec.n" must validate at least one schema (anyOf)'),
      cause("FieldValueInvalid", "spec.n",
            "Invalid value: 5: spec.n in body should be greater than or equal to 10")]),
    ("all_of_reports_the_failing_branch",
     obj({"n": {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 3}]}}), {"n": 5},
     [cause("FieldValueInvalid", "spec.n",
            "Invalid value: 5: spec.n in body should be less than or equal to 3"),
      cause("FieldValueInvalid", "<nil>",
            'Invalid value: "": "spec.n" must validate all the schemas (allOf)')]),
    ("not_refuses_what_matches",
     obj({"name": {"type": "string", "not": {"enum": ["admin"]}}}), {"name": "admin"},
     [cause("FieldValueInvalid", "<nil>",
            'Invalid value: "": "spec.name" must not validate the schema (not)')]),
    ("an_embedded_resource_needs_api_version_and_kind",
     obj({"template": {"type": "object", "x-kubernetes-embedded-resource": True,
                       "x-kubernetes-preserve-unknown-fields": True}}),
     {"template": {"spec": {}}},
     [cause("FieldValueRequired", "spec.template.apiVersion", "Required value: must not be empty"),
      cause("FieldValueRequired", "spec.template.kind", "Required value: must not be empty")]),
    ("an_embedded_resource_with_api_version_and_kind_is_valid",
     obj({"template": {"type": "object", "x-kubernetes-embedded-resource": True,
                       "x-kubernetes-preserve-unknown-fields": True}}),
     {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}, []),
]


@pytest.mark.parametrize(("spec_schema", "spec", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_validation_keyword(spec_schema, spec, expected):
    assert causes_of(spec_schema, spec) == expected


META_CASES = [
    ("a_name_with_capitals_is_not_a_dns_subdomain", {"name": "Bad_Name"},
     [cause("FieldValueInvalid", "metadata.name",
            'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]),
    ("a_name_over_253_characters_is_too_long", {"name": "a" * 254},
     [cause("FieldValueInvalid", "metadata.name",
            f'Invalid value: "{"a" * 254}": must be no more than 253 characters')]),
    ("no_name_and_no_generate_name", {},
     [cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]),
    ("a_generate_name_alone_is_enough", {"generateName": "thing-"}, []),
    ("a_finalizer_must_be_a_qualified_name", {"name": "ok", "finalizers": ["bad finalizer"]},
     [cause("FieldValueInvalid", "metadata.finalizers",
            'Invalid value: "bad finalizer": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
    ("an_owner_reference_needs_its_uid", {"name": "ok", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"}]},
     [cause("FieldValueInvalid", "metadata.ownerReferences.uid",
            'Invalid value: "": uid must not be empty')]),
    ("only_one_owner_may_be_the_controller", {"name": "ok", "ownerReferences": [
        {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]},
     [cause("FieldValueInvalid", "metadata.ownerReferences",
            'Invalid value: []interface {}{map[string]interface {}{"apiVersion":"v1", '
            '"controller":true, "kind":"A", "name":"a", "uid":"1"}, map[string]interface {}'
            '{"apiVersion":"v1", "controller":true, "kind":"B", "name":"b", "uid":"2"}}: Only one '
            'reference can have Controller set to true. Found "true" in references for A/a and B/b')]),
    ("a_label_value_with_spaces", {"name": "ok", "labels": {"app": "two words"}},
     [cause("FieldValueInvalid", "metadata.labels",
            'Invalid value: "two words": a valid label must be an empty string or consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
]


@pytest.mark.parametrize(("metadata", "expected"), [case[1:] for case in META_CASES],
                         ids=[case[0] for case in META_CASES])
def test_metadata_rule(metadata, expected):
    body = thing({})
    body["metadata"] = metadata
    _, causes = validate_custom_resource(crd_for({"type": "object"}), body)
    assert causes == expected


def test_a_schema_constraint_on_metadata_name_applies():
    crd = crd_for({"type": "object"})
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] = {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}}
    _, causes = validate_custom_resource(crd, thing({}, name="too-long-name"))
    assert causes == [cause("FieldValueTooLong", "metadata.name",
                            "Too long: may not be more than 5 bytes")]


def test_a_version_the_crd_does_not_have_is_a_clear_error():
    body = thing({})
    body["apiVersion"] = "test.kadence.dev/v9"
    with pytest.raises(ValueError, match="'v9' of 'test.kadence.dev' is not served"):
        validate_custom_resource(crd_for({"type": "object"}), body)


@pytest.mark.parametrize(("number", "printed"), [
    (0.0, "0"), (1.0, "1"), (0.5, "0.5"), (1e6, "1e+06"), (123456.0, "123456"),
    (1.25e-5, "1.25e-05"), (-2.5, "-2.5"),
])
def test_floats_print_as_go_prints_them(number, printed):
    assert go_float(number) == printed


def test_maps_print_as_go_prints_an_interface_map_with_sorted_keys():
    assert go_sharp_v({"b": 1, "a": "x", "c": [True, None]}) == (
        'map[string]interface {}{"a":"x", "b":1, "c":[]interface {}{true, interface {}(nil)}}')


# ---- ratcheting: on update, values equal to the stored ones are not checked again ---------

RATCHET = obj({
    "name": {"type": "string", "maxLength": 3},
    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": obj({"name": {"type": "string"}, "number": {"type": "integer", "minimum": 1}},
                           required=["name"])},
    "size": {"type": "integer", "x-kubernetes-validations": [
        {"rule": "self < 10", "message": "under 10"}]},
})


def update_causes(spec: Any, old_spec: Any) -> list[dict[str, str]]:
    _, causes = validate_custom_resource(crd_for(RATCHET), thing(spec), thing(old_spec))
    return causes


def test_an_unchanged_invalid_value_is_allowed_on_update():
    assert update_causes({"name": "too-long", "size": 20, "other": 1},
                         {"name": "too-long", "size": 20}) == []


def test_a_changed_invalid_value_is_refused_on_update():
    assert update_causes({"name": "longer"}, {"name": "too-long"}) == [
        cause("FieldValueTooLong", "spec.name", "Too long: may not be more than 3 bytes")]


def test_a_changed_value_breaking_a_cel_rule_is_refused_on_update():
    assert update_causes({"size": 30}, {"size": 20}) == [
        cause("FieldValueInvalid", "spec.size", 'Invalid value: "integer": under 10')]


def test_map_list_items_ratchet_by_their_keys():
    old = {"ports": [{"name": "a", "number": 0}, {"name": "b", "number": 5}]}
    new = {"ports": [{"name": "b", "number": -1}, {"name": "a", "number": 0}]}
    assert update_causes(new, old) == [
        cause("FieldValueInvalid", "spec.ports[0].number",
              "Invalid value: -1: spec.ports[0].number in body should be greater than or equal to 1")]


def test_a_create_checks_everything():
    _, causes = validate_custom_resource(crd_for(RATCHET), thing({"name": "too-long"}))
    assert causes == [cause("FieldValueTooLong", "spec.name", "Too long: may not be more than 3 bytes")]


# ---- robustness: any JSON body gives causes, never an exception ----------------------------

WIDGETS_CRD = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "schema" / "widgets-crd.yaml").read_text())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                       allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["size", "replicas", "tags", "labels", "families", "name", "port",
                         "startAt", "choice", "a", "b", "x"]), children, max_size=5),
    max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(spec=JSON_VALUES, old_spec=st.none() | JSON_VALUES)
def test_any_json_spec_gives_well_formed_causes_and_never_raises(spec, old_spec):
    body = {"apiVersion": "test.kadence.dev/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": spec}
    old = None if old_spec is None else {**body, "spec": old_spec}
    result, causes = validate_custom_resource(WIDGETS_CRD, body, old)
    assert isinstance(result, dict)
    for found in causes:
        assert set(found) == {"reason", "message", "field"}
        assert all(isinstance(found[key], str) and found[key] for key in found)
