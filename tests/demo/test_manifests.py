"""examples/demo: accepted by the CRD schemas and the operator, and what `kadence demo` expects."""

from __future__ import annotations

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

DEMO = list(kadence_documents(sorted((EXAMPLES / "demo").glob("*.yaml"))))
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
    assert policy["performance"] == {"metric": "f1", "threshold": 0.55, "minLabelled": 100}
    assert policy["window"] == {"lastPredictions": WINDOW}, "the scenario's offline tests use this window"
    assert policy["actions"]["retrain"]["includeFeedback"] is True
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
