"""The demo's manifests - shipped in the package (kadence/demo/manifests), the same files as
examples/demo - accepted by the CRD schemas and the operator, and what `kadence demo` expects."""

from __future__ import annotations

import re

import pytest
from pandas.api.types import is_numeric_dtype

from kadence.api.kinds import BY_KIND
from kadence.api.validation import parse_spec
from kadence.demo import loop
from kadence.demo.scenario import INPUTS, TARGET, Scenario
from kadence.sandbox.apiserver.schema import validate_custom_resource
from kadence.sandbox.s3 import DEFAULT_BUCKET

from ..test_examples import CRDS, EXAMPLES, kadence_documents
from .test_scenario import WINDOW

DEMO = list(kadence_documents(sorted(loop.MANIFESTS.glob("*.yaml"))))
BY_NAME = {(d.values[0]["kind"], d.values[0]["metadata"]["name"]): d.values[0] for d in DEMO}


@pytest.mark.parametrize("document", DEMO)
def test_every_demo_manifest_passes_the_crd_schema_and_the_operators_validation(document):
    _, causes = validate_custom_resource(CRDS[document["kind"]], document)
    assert causes == []
    model, problems = parse_spec(BY_KIND[document["kind"]].spec, document["spec"])
    assert problems == [] and model is not None


def test_the_demo_reads_and_writes_where_the_manifests_say():
    dataset = BY_NAME[("Dataset", loop.DATASET)]
    assert dataset["spec"]["source"]["uri"] == f"s3://{DEFAULT_BUCKET}/{loop.DATA_KEY}"
    for plural, name in loop.SETUP_ORDER:
        assert any(BY_KIND[kind].plural == plural and n == name for kind, n in BY_NAME), (plural, name)
    policy = BY_NAME[("MonitorPolicy", loop.POLICY)]["spec"]
    assert policy["inferenceServiceRef"]["name"] == loop.SERVICE
    assert policy["performance"] == {"metric": "f1", "threshold": 0.55, "minLabelled": 100,
                                     "window": {"labelledPredictions": WINDOW, "maxAge": "1h"}}
    assert policy["window"] == {"lastPredictions": WINDOW}, "the scenario's offline tests use this window"
    assert policy["actions"]["retrain"]["includeFeedback"] is True
    assert dataset["spec"]["feedback"] == {"from": [{"monitorPolicy": loop.POLICY}]}, "the retrain folds feedback in"
    assert BY_NAME[("InferenceService", loop.SERVICE)]["spec"]["model"] == loop.MODEL


def test_the_datasets_schema_accepts_every_month_of_the_scenario():
    columns = {c["name"]: c for c in BY_NAME[("Dataset", loop.DATASET)]["spec"]["schema"]["columns"]}
    assert set(columns) == {*INPUTS, TARGET}
    scenario = Scenario(months=7)
    for month in [scenario.base(), *(scenario.month(m, 300) for m in range(8))]:
        for name, column in columns.items():
            values = month[name]
            if "min" in column:
                assert values.min() >= column["min"], name
            if "max" in column:
                assert values.max() <= column["max"], name
            if "allowedValues" in column:
                assert set(values.astype(str)) <= set(column["allowedValues"]), name
            if column["type"] in ("int", "float"):
                assert is_numeric_dtype(values), name


def test_examples_demo_holds_the_same_files_as_the_package_ships():
    shipped = {p.name: p.read_bytes() for p in loop.MANIFESTS.glob("*.yaml")}
    examples = {p.name: p.read_bytes() for p in (EXAMPLES / "demo").glob("*.yaml")}
    assert sorted(shipped) == sorted(examples)
    for name in shipped:
        assert shipped[name] == examples[name], f"examples/demo/{name} differs from kadence/demo/manifests/{name}"


def test_the_demo_loads_its_own_manifests_and_each_object_it_drives_is_there():
    documents = loop.load_manifests(loop.default_manifests())
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Dataset", "customers"), ("FeatureSet", "customers-features"), ("TrainingRun", "customers-initial"),
        ("InferenceService", "customers"), ("MonitorPolicy", "customers-quality")]


def _copy(tmp_path, edit=None, drop=None):
    for path in loop.MANIFESTS.glob("*.yaml"):
        if path.name != drop:
            text = path.read_text()
            (tmp_path / path.name).write_text(edit(path.name, text) if edit else text)
    return tmp_path


@pytest.mark.parametrize(("change", "says"), [
    ({"drop": "05-monitorpolicy.yaml"}, "lack what the demo drives: monitorpolicies/customers-quality"),
    ({"edit": lambda name, text: text.replace("threshold: 0.55", "threshold: -1")},
     "MonitorPolicy/customers-quality is invalid: spec.performance.threshold"),
    ({"edit": lambda name, text: text.replace("kind: FeatureSet", "kind: Featureset")},
     "'Featureset' is not a Kadence kind"),
])
def test_manifests_the_demo_cannot_drive_are_refused_with_the_reason(tmp_path, change, says):
    with pytest.raises(loop.DemoError, match=re.escape(says)):
        loop.load_manifests(_copy(tmp_path, **change))


def test_a_missing_manifests_folder_says_they_ship_in_the_package(tmp_path):
    with pytest.raises(loop.DemoError, match="they ship inside the package"):
        loop.load_manifests(tmp_path / "nowhere")



def test_the_demos_retrain_holds_the_newest_labels_out_for_the_comparison():
    retrain = BY_NAME[("MonitorPolicy", loop.POLICY)]["spec"]["actions"]["retrain"]
    assert 0 < retrain["comparisonHoldout"]["rows"] <= WINDOW  # the comparison scores the quality window
