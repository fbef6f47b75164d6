"""Operator-side validation names fields the way kube-apiserver does."""

import pytest

from kadence.api.dataset import DatasetSpec
from kadence.api.trainingrun import TrainingRunSpec
from kadence.api.validation import parse_spec

BASE_RUN = {"featureSetRef": {"name": "f"}, "task": "classification", "objective": {"metric": "f1"}, "model": "m"}

CASES = [
    ("a nested field is joined with dots", TrainingRunSpec, {**BASE_RUN, "search": {"maxTrials": 0}},
     "spec.search.maxTrials"),
    ("a list item is written with its index", TrainingRunSpec,
     {**BASE_RUN, "search": {"families": [{"name": "random_forest"}, {"name": "tabnet"}]}},
     "spec.search.families[1].name"),
    ("a map key is written in brackets", TrainingRunSpec,
     {**BASE_RUN, "search": {"families": [{"name": "knn", "space": {"n_neighbors": {"low": 9, "high": 1}}}]}},
     "spec.search.families[0].space[n_neighbors]"),
    ("a map value's own field follows its key", TrainingRunSpec,
     {**BASE_RUN, "search": {"families": [{"name": "knn", "space": {"n_neighbors": {"low": "x", "high": 1}}}]}},
     "spec.search.families[0].space[n_neighbors].low"),
    ("a missing required field is named", TrainingRunSpec, {k: v for k, v in BASE_RUN.items() if k != "task"},
     "spec.task"),
    ("a camelCase wire name is kept", DatasetSpec,
     {"source": {"inline": "a"}, "schema": {"columns": [{"name": "a", "type": "int"}]}, "refreshInterval": "soon"},
     "spec.refreshInterval"),
    ("a map of numbers names the key", DatasetSpec,
     {"source": {"inline": "a"}, "schema": {"columns": [{"name": "a", "type": "int"}]},
      "quality": {"maxMissingFractionPerColumn": {"a": "lots"}}},
     "spec.quality.maxMissingFractionPerColumn[a]"),
]


@pytest.mark.parametrize("name,model,spec,expected", CASES, ids=[c[0] for c in CASES])
def test_field_paths(name, model, spec, expected):
    parsed, problems = parse_spec(model, spec)
    assert parsed is None
    assert expected in [field for field, _ in problems], problems


def test_an_unknown_field_is_refused_by_name():
    _, problems = parse_spec(TrainingRunSpec, {**BASE_RUN, "maxTrial": 3})
    assert ("spec.maxTrial", "Extra inputs are not permitted") in problems
