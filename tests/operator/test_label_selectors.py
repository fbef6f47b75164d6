"""Label selectors (kadence.k8s.selectors), the one implementation the operator's cache, the
sandbox's API server and its controllers share: both forms, matched as kube-apiserver matches."""

from __future__ import annotations

import re

import pytest

from kadence.k8s import selectors


@pytest.mark.parametrize("selector, labels, expected", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier notin (a,b)", {}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
    ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a", "legacy": "1"}, False),
    ("app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True),
    ("", {"anything": "x"}, True),
    (None, {}, True),
])
def test_a_selector_string_matches_as_kube_apiserver_does(selector, labels, expected):
    assert selectors.matches(selectors.parse(selector), labels) is expected


@pytest.mark.parametrize("selector, expected", [
    ({"matchLabels": {"a": "1"}}, True),
    ({"matchLabels": {"a": "2"}}, False),
    ({"matchExpressions": [{"key": "b", "operator": "In", "values": ["x", "y"]}]}, True),
    ({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]}]}, False),
    ({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, True),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]}, False),
])
def test_a_selector_object_matches_like_its_string_form(selector, expected):
    assert selectors.matches(selectors.from_object(selector), {"a": "1", "b": "x"}) is expected


@pytest.mark.parametrize("text, message", [
    ("a b c", 'invalid label key "a b c"'),
    ("-a=b", 'invalid label key "-a"'),
    ("x in (a", 'invalid label key "x in (a"'),
])
def test_a_malformed_selector_string_is_refused_with_kube_apiservers_message(text, message):
    with pytest.raises(selectors.SelectorError, match=re.escape(message)):
        selectors.parse(text)


def test_a_selector_object_with_an_unknown_operator_is_refused():
    with pytest.raises(selectors.SelectorError, match="'Near' is not a valid label selector operator"):
        selectors.from_object({"matchExpressions": [{"key": "a", "operator": "Near"}]})
