"""Pruning of unknown fields and defaulting, done before validation as kube-apiserver does."""

from __future__ import annotations

from typing import Any

import pytest

from kadence.sandbox.apiserver.schema import (
    builtin_unknown_fields, default_custom_resource, strict_decoding_message, unknown_fields,
    validate_custom_resource, warning_texts,
)

from .schema_helpers import crd_for, thing


def processed_spec(spec_schema: dict[str, Any], spec: Any) -> Any:
    result, causes = validate_custom_resource(crd_for(spec_schema), thing(spec))
    assert causes == []
    return result["spec"]


FAMILIES = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "default": 1},
        "families": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "trials": {"type": "integer", "default": 10},
                "options": {"type": "object", "default": {}, "properties": {
                    "depth": {"type": "integer", "default": 3},
                    "inner": {"type": "object", "default": {}, "properties": {
                        "seed": {"type": "integer", "default": 42}}},
                }},
            },
        }},
        "note": {"type": "string", "default": "none"},
        "optional": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}},
    },
}

DEFAULTING_CASES = [
    ("a_missing_field_gets_its_default", {}, {"replicas": 1, "note": "none"}),
    ("a_given_value_wins_over_the_default", {"replicas": 4, "note": "mine"},
     {"replicas": 4, "note": "mine"}),
    ("list_items_get_their_defaults_and_objects_created_by_defaults_get_theirs",
     {"families": [{"name": "rf"}, {"name": "lr", "trials": 5, "options": {"depth": 1}}]},
     {"replicas": 1, "note": "none", "families": [
         {"name": "rf", "trials": 10, "options": {"depth": 3, "inner": {"seed": 42}}},
         {"name": "lr", "trials": 5, "options": {"depth": 1, "inner": {"seed": 42}}}]}),
    ("a_null_for_a_non_nullable_field_with_a_default_gets_the_default", {"note": None},
     {"replicas": 1, "note": "none"}),
    ("a_null_for_a_non_nullable_field_without_a_default_is_dropped", {"optional": None},
     {"replicas": 1, "note": "none"}),
    ("map_values_get_their_defaults", {"labels": {"a": {}, "b": {"weight": 3}}},
     {"replicas": 1, "note": "none", "labels": {"a": {"weight": 1}, "b": {"weight": 3}}}),
]


@pytest.mark.parametrize(("spec", "expected"), [case[1:] for case in DEFAULTING_CASES],
                         ids=[case[0] for case in DEFAULTING_CASES])
def test_defaulting(spec, expected):
    assert processed_spec(FAMILIES, spec) == expected


def test_defaults_do_not_leak_between_objects():
    first = processed_spec(FAMILIES, {"families": [{"name": "a"}]})
    first["families"][0]["options"]["depth"] = 99
    second = processed_spec(FAMILIES, {"families": [{"name": "b"}]})
    assert second["families"][0]["options"]["depth"] == 3


def test_the_callers_object_is_left_untouched():
    body = thing({"families": [{"name": "a"}], "junk": 1})
    validate_custom_resource(crd_for(FAMILIES), body)
    assert body["spec"] == {"families": [{"name": "a"}], "junk": 1}


def test_a_stored_object_is_defaulted_on_read():
    stored = thing({"families": [{"name": "a"}]})
    assert default_custom_resource(crd_for(FAMILIES), stored)["spec"]["families"] == [
        {"name": "a", "trials": 10, "options": {"depth": 3, "inner": {"seed": 42}}}]


def test_a_required_field_dropped_as_a_null_is_reported_missing():
    schema = {"type": "object", "required": ["size"], "properties": {"size": {"type": "string"}}}
    _, causes = validate_custom_resource(crd_for(schema), thing({"size": None}))
    assert causes == [{"reason": "FieldValueRequired", "message": "Required value",
                       "field": "spec.size"}]


PRUNING_SCHEMA = {
    "type": "object",
    "properties": {
        "known": {"type": "string"},
        "nested": {"type": "object", "properties": {"keep": {"type": "integer"}}},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"typed": {"type": "object", "properties": {
                     "a": {"type": "string"}}}}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "properties": {"spec": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True}}},
    },
}


def test_unknown_fields_are_pruned_everywhere_the_schema_does_not_preserve_them():
    spec = {
        "known": "k", "unknown": 1,
        "nested": {"keep": 1, "drop": 2},
        "items": [{"name": "a", "extra": True}],
        "free": {"anything": {"deep": [1]}, "typed": {"a": "x", "b": "pruned"}},
        "template": {"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "p", "bogus": 1}, "spec": {"x": 1}, "other": 2},
    }
    assert processed_spec(PRUNING_SCHEMA, spec) == {
        "known": "k",
        "nested": {"keep": 1},
        "items": [{"name": "a"}],
        "free": {"anything": {"deep": [1]}, "typed": {"a": "x"}},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"x": 1}},
    }


def test_unknown_fields_are_listed_by_path_for_strict_field_validation():
    body = thing({"known": "k", "unknown": 1, "nested": {"drop": 2},
                  "items": [{"name": "a"}, {"extra": True}]}, topLevel=True)
    body["metadata"]["bogus"] = "x"
    assert unknown_fields(crd_for(PRUNING_SCHEMA), body) == [
        "metadata.bogus", "spec.unknown", "spec.nested.drop", "spec.items[1].extra", "topLevel"]


def test_a_schema_without_status_prunes_a_status():
    result, causes = validate_custom_resource(crd_for(PRUNING_SCHEMA),
                                              thing({}, status={"phase": "x"}))
    assert causes == [] and "status" not in result


# ---- unknown fields of built-in kinds (fieldValidation=Strict) ---------------------------

def test_unknown_fields_of_a_built_in_kind_are_found_by_its_definition():
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any-key": "is fine"}, "colour": "red"},
        "spec": {"replicas": 1, "replicaz": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "1"}}},
                     {"name": "side", "imag": "busybox"}]}}},
    }
    assert builtin_unknown_fields(deployment) == [
        "metadata.colour", "spec.replicaz", "spec.template.spec.containers[1].imag"]


def test_a_kind_without_a_definition_has_no_unknown_fields_to_report():
    assert builtin_unknown_fields({"apiVersion": "example.com/v1", "kind": "Thing", "x": 1}) == []


def test_strict_decoding_errors_are_worded_as_the_apiserver_words_them():
    assert strict_decoding_message("Widget", "v1", ["spec.colour", "spec.size2"]) == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.colour", unknown field "spec.size2"')
    assert warning_texts(["spec.colour"]) == ['299 - "unknown field \\"spec.colour\\""']
