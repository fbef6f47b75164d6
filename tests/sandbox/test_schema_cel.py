"""CEL `x-kubernetes-validations` rules on custom objects: results, messages, paths,
transition rules and the Kubernetes CEL libraries."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kadence.sandbox.apiserver.schema import validate_custom_resource
from kadence.sandbox.apiserver.schema import cel

from .schema_helpers import crd_for, thing


def with_rules(properties: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "x-kubernetes-validations": list(rules)}


def causes_of(schema: dict[str, Any], spec: Any, old_spec: Any = None) -> list[dict[str, str]]:
    old = thing(old_spec) if old_spec is not None else None
    _, causes = validate_custom_resource(crd_for(schema), thing(spec), old)
    return causes


def invalid(field: str, message: str, node_type: str = "object") -> dict[str, str]:
    return {"reason": "FieldValueInvalid", "field": field,
            "message": f'Invalid value: "{node_type}": {message}'}


RANGE = {"min": {"type": "integer"}, "max": {"type": "integer"}}

CASES = [
    ("a_rule_that_holds_gives_no_cause",
     with_rules(RANGE, {"rule": "self.min <= self.max"}), {"min": 1, "max": 2}, []),
    ("a_failing_rule_gives_its_message_at_the_node",
     with_rules(RANGE, {"rule": "self.min <= self.max", "message": "min must not exceed max"}),
     {"min": 3, "max": 2}, [invalid("spec", "min must not exceed max")]),
    ("a_failing_rule_without_message_quotes_the_rule",
     with_rules(RANGE, {"rule": "self.min <= self.max"}), {"min": 3, "max": 2},
     [invalid("spec", "failed rule: self.min <= self.max")]),
    ("message_expression_builds_the_message",
     with_rules(RANGE, {"rule": "self.min <= self.max", "message": "unused",
                        "messageExpression": "'min ' + string(self.min) + ' exceeds max ' + string(self.max)"}),
     {"min": 3, "max": 2}, [invalid("spec", "min 3 exceeds max 2")]),
    ("a_message_expression_that_fails_falls_back_to_the_message",
     with_rules(RANGE, {"rule": "self.min <= self.max", "message": "fallback",
                        "messageExpression": "'no ' + self.nope"}),
     {"min": 3, "max": 2}, [invalid("spec", "fallback")]),
    ("field_path_moves_the_cause_to_the_named_field",
     with_rules(RANGE, {"rule": "self.min <= self.max", "message": "too big", "fieldPath": ".min"}),
     {"min": 3, "max": 2}, [invalid("spec.min", "too big")]),
    ("reason_forbidden_gives_a_forbidden_cause",
     with_rules(RANGE, {"rule": "!has(self.min)", "message": "min is not allowed",
                        "reason": "FieldValueForbidden"}),
     {"min": 1}, [{"reason": "FieldValueForbidden", "field": "spec",
                   "message": "Forbidden: min is not allowed"}]),
    ("reason_required_gives_a_required_cause",
     with_rules(RANGE, {"rule": "has(self.max)", "message": "max is needed",
                        "reason": "FieldValueRequired"}),
     {"min": 1}, [{"reason": "FieldValueRequired", "field": "spec",
                   "message": "Required value: max is needed"}]),
    ("rules_on_list_items_name_the_item",
     {"type": "object", "properties": {"steps": {"type": "array", "items": with_rules(
         {"weight": {"type": "integer"}}, {"rule": "self.weight < 100", "message": "under 100"})}}},
     {"steps": [{"weight": 10}, {"weight": 100}]}, [invalid("spec.steps[1]", "under 100")]),
    ("rules_on_map_values_name_the_key_in_brackets",
     {"type": "object", "properties": {"space": {"type": "object", "additionalProperties": with_rules(
         RANGE, {"rule": "self.min <= self.max", "message": "upside down"})}}},
     {"space": {"depth": {"min": 5, "max": 1}}}, [invalid("spec.space[depth]", "upside down")]),
    ("a_rule_on_a_scalar_reports_the_scalar_type",
     {"type": "object", "properties": {"name": {"type": "string", "x-kubernetes-validations": [
         {"rule": "self.startsWith('kd-')", "message": "must start with kd-"}]}}},
     {"name": "x"}, [invalid("spec.name", "must start with kd-", "string")]),
    ("a_missing_key_is_an_evaluation_error",
     with_rules(RANGE, {"rule": "self.min <= self.max"}), {"min": 1},
     [invalid("spec", "no such key: max evaluating rule: self.min <= self.max")]),
    ("rules_are_not_run_when_a_type_error_was_found",
     with_rules(RANGE, {"rule": "self.min <= self.max"}), {"min": "one", "max": 2},
     [{"reason": "FieldValueTypeInvalid", "field": "spec.min",
       "message": 'Invalid value: "string": spec.min in body must be of type integer: "string"'},
      {"reason": "FieldValueInvalid", "field": "<nil>",
       "message": 'Invalid value: "null": some validation rules were not checked because the '
                  "object was invalid; correct the existing errors to complete validation"}]),
    ("numbers_are_doubles_even_when_written_as_integers",
     with_rules({"ratio": {"type": "number"}}, {"rule": "self.ratio <= 1.0"}), {"ratio": 1}, []),
    ("date_times_compare_as_timestamps",
     with_rules({"start": {"type": "string", "format": "date-time"},
                 "end": {"type": "string", "format": "date-time"}},
                {"rule": "self.start < self.end", "message": "end before start"}),
     {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
     [invalid("spec", "end before start")]),
    ("durations_compare_as_durations",
     with_rules({"every": {"type": "string", "format": "duration"}},
                {"rule": "self.every >= duration('1m')", "message": "at least a minute"}),
     {"every": "30s"}, [invalid("spec", "at least a minute")]),
    ("property_names_with_dashes_are_escaped",
     with_rules({"max-size": {"type": "integer"}}, {"rule": "self.max__dash__size < 10"}),
     {"max-size": 20}, [invalid("spec", "failed rule: self.max__dash__size < 10")]),
]


@pytest.mark.parametrize(("schema", "spec", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule(schema, spec, expected):
    assert causes_of(schema, spec) == expected


IMMUTABLE = {"type": "object", "properties": {
    "key": {"type": "string", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "key is immutable"}]},
    "ports": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"], "properties": {
                  "name": {"type": "string"},
                  "number": {"type": "integer", "x-kubernetes-validations": [
                      {"rule": "self >= oldSelf", "message": "may only grow"}]}}}},
}}


def test_a_transition_rule_is_not_evaluated_on_create():
    assert causes_of(IMMUTABLE, {"key": "a"}) == []


def test_a_transition_rule_passes_when_the_value_is_unchanged():
    assert causes_of(IMMUTABLE, {"key": "a"}, old_spec={"key": "a"}) == []


def test_a_transition_rule_fails_when_the_value_changes():
    assert causes_of(IMMUTABLE, {"key": "b"}, old_spec={"key": "a"}) == [
        invalid("spec.key", "key is immutable", "string")]


def test_a_transition_rule_is_skipped_for_a_field_that_was_absent_before():
    assert causes_of(IMMUTABLE, {"key": "b"}, old_spec={}) == []


def test_map_list_items_are_correlated_by_key_for_transition_rules():
    old = {"ports": [{"name": "a", "number": 5}, {"name": "b", "number": 5}]}
    new = {"ports": [{"name": "b", "number": 4}, {"name": "a", "number": 6},
                     {"name": "c", "number": 1}]}
    assert causes_of(IMMUTABLE, new, old_spec=old) == [
        invalid("spec.ports[0].number", "may only grow", "integer")]


LIBRARY_CASES = [
    ("lower_ascii", "self.s.lowerAscii() == 'hello'", {"s": "HeLLo"}),
    ("upper_ascii", "self.s.upperAscii() == 'HELLO'", {"s": "hello"}),
    ("string_index_of", "self.s.indexOf('l') == 2 && self.s.lastIndexOf('l') == 3", {"s": "hello"}),
    ("split_and_join", "self.s.split(',').join('-') == 'a-b-c'", {"s": "a,b,c"}),
    ("replace_and_substring", "self.s.replace('l', 'L').substring(1, 4) == 'eLL'", {"s": "hello"}),
    ("trim", "self.s.trim() == 'x'", {"s": "  x "}),
    ("matches", "self.s.matches('^[a-z]+$')", {"s": "hello"}),
    ("list_is_sorted", "self.l.isSorted() && !self.m.isSorted()", {"l": [1, 2, 3], "m": [2, 1]}),
    ("list_sum_min_max", "self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3",
     {"l": [3, 1, 2]}),
    ("list_index_of", "self.l.indexOf(2) == 1", {"l": [1, 2, 3]}),
    ("macros", "self.l.all(x, x > 0) && self.l.exists(x, x == 2) && self.l.exists_one(x, x == 3) "
               "&& self.l.map(x, x * 2)[0] == 2 && size(self.l.filter(x, x > 1)) == 2",
     {"l": [1, 2, 3]}),
    ("url", "isURL(self.s) && url(self.s).getHost() == 'example.com:8080' && "
            "url(self.s).getScheme() == 'https' && url(self.s).getPort() == '8080'",
     {"s": "https://example.com:8080/path?q=1"}),
    ("quantity", "isQuantity(self.s) && quantity(self.s).isGreaterThan(quantity('1Gi')) && "
                 "quantity('500m').asApproximateFloat() == 0.5", {"s": "2Gi"}),
]


@pytest.mark.parametrize(("rule", "spec"), [case[1:] for case in LIBRARY_CASES],
                         ids=[case[0] for case in LIBRARY_CASES])
def test_kubernetes_cel_library_function(rule, spec):
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "x-kubernetes-validations": [{"rule": rule}]}
    assert causes_of(schema, spec) == []
    assert rule not in cel.SKIPPED_RULES, "the rule was skipped, not evaluated"


def test_a_library_function_that_returns_false_fails_the_rule():
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "x-kubernetes-validations": [{"rule": "self.l.isSorted()"}]}
    assert causes_of(schema, {"l": [2, 1]}) == [invalid("spec", "failed rule: self.l.isSorted()")]


def test_a_rule_cel_python_cannot_evaluate_is_logged_once_and_skipped(caplog):
    rule = "self.?name.orValue('x') == 'x'"
    schema = with_rules({"name": {"type": "string"}}, {"rule": rule})
    cel.SKIPPED_RULES.discard(rule)
    with caplog.at_level(logging.WARNING, logger="kadence.sandbox.schema.cel"):
        assert causes_of(schema, {"name": "y"}) == []
        assert causes_of(schema, {"name": "z"}) == []
    assert rule in cel.SKIPPED_RULES
    assert [record.getMessage() for record in caplog.records].count(
        f"CEL rule not evaluated (optional types are not supported by cel-python), "
        f"treated as skipped: {rule}") == 1


def test_a_function_cel_python_lacks_is_skipped_not_failed():
    rule = "self.name.reverse() == 'x'"
    schema = with_rules({"name": {"type": "string"}}, {"rule": rule})
    assert causes_of(schema, {"name": "y"}) == []
    assert rule in cel.SKIPPED_RULES


def test_a_message_expression_is_trimmed_and_a_multi_line_one_falls_back_to_the_message():
    trimmed = with_rules(RANGE, {"rule": "self.min <= self.max",
                                 "messageExpression": "'  padded  '"})
    multi_line = with_rules(RANGE, {"rule": "self.min <= self.max", "message": "fallback",
                                    "messageExpression": "'two\\nlines'"})
    assert causes_of(trimmed, {"min": 3, "max": 2}) == [invalid("spec", "padded")]
    assert causes_of(multi_line, {"min": 3, "max": 2}) == [invalid("spec", "fallback")]


def test_a_field_path_with_a_quoted_map_key_is_normalized():
    schema = {"type": "object", "properties": {"labels": {
        "type": "object", "additionalProperties": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "!('a.b' in self.labels)", "message": "no a.b",
                                      "fieldPath": ".labels['a.b']"}]}
    assert causes_of(schema, {"labels": {"a.b": "x"}}) == [invalid("spec.labels[a.b]", "no a.b")]


def test_a_failing_rule_at_the_resource_root_names_no_field():
    crd = crd_for({"type": "object"})
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
        {"rule": "self.metadata.name.size() < 5", "message": "name too long"}]
    _, causes = validate_custom_resource(crd, thing({}))
    assert causes == [invalid("<nil>", "name too long")]


def test_an_integer_beyond_int64_is_a_double_as_go_decodes_it():
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "x-kubernetes-validations": [{"rule": "self.n > 1.0", "message": "small"}]}
    assert causes_of(schema, {"n": 2 ** 70}) == []


def test_integer_overflow_is_an_evaluation_error():
    schema = with_rules({"n": {"type": "integer"}}, {"rule": "self.n + 1 > 0"})
    assert causes_of(schema, {"n": 2 ** 63 - 1}) == [
        invalid("spec", "integer overflow evaluating rule: self.n + 1 > 0")]


def test_a_library_function_given_the_wrong_kind_of_value_is_a_no_such_overload_error():
    schema = with_rules({"s": {"type": "string"}}, {"rule": "url(self.s).getHost() == 'x'"})
    assert causes_of(schema, {"s": "not a url"}) == [
        invalid("spec", "URL is not absolute: not a url evaluating rule: "
                        "url(self.s).getHost() == 'x'")]


@pytest.mark.parametrize(("list_type", "reordered_is_equal"), [("set", True), ("map", True),
                                                                ("atomic", False)])
def test_set_and_map_lists_compare_ignoring_order(list_type, reordered_is_equal):
    items: dict[str, Any] = {"type": "string"}
    if list_type == "map":
        items = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    tags = {"type": "array", "x-kubernetes-list-type": list_type, "items": items,
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}
    if list_type == "map":
        tags["x-kubernetes-list-map-keys"] = ["name"]
    old, new = (["a", "b"], ["b", "a"]) if list_type != "map" else (
        [{"name": "a"}, {"name": "b"}], [{"name": "b"}, {"name": "a"}])
    found = causes_of({"type": "object", "properties": {"tags": tags}}, {"tags": new},
                      old_spec={"tags": old})
    assert (found == []) == reordered_is_equal


def test_a_set_list_equals_a_literal_in_any_order():
    schema = {"type": "object", "properties": {"tags": {
        "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self == ['x', 'y']"}]}}}
    assert causes_of(schema, {"tags": ["y", "x"]}) == []
