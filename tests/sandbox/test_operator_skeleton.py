"""The operator as users meet it: kubectl apply against the sandbox, the operator reports in status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import wait_for
from .operator_process import running_operator

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "skeleton"


@pytest.fixture(scope="module")
def operator_process(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


def ready_of(kubectl, resource: str, name: str) -> dict | None:
    result = kubectl("get", resource, name, "-n", NAMESPACE, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    for condition in json.loads(result.stdout).get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return condition
    return None


def test_every_example_is_accepted_and_its_status_speaks_for_the_current_generation(operator_process, kubectl):
    kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "examples" / "churn"))
    # The samples are written for namespace `default`; a namespace's objects may name only its own storage.
    for sample in sorted((REPO / "examples" / "samples").glob("*.yaml")):
        text = sample.read_text().replace("/default/", f"/{NAMESPACE}/")
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=text)
    for resource, name in [("dataset", "churn"), ("featureset", "churn-features"), ("trainingrun", "churn-initial"),
                           ("modelversion", "churn-v100"), ("inferenceservice", "churn"),
                           ("monitorpolicy", "churn-quality")]:
        ready = wait_for(lambda: ready_of(kubectl, resource, name), timeout=60, message=f"{resource}/{name} status")
        assert ready["reason"] != "InvalidSpec", ready
        assert ready["observedGeneration"] == 1


def test_kubectl_get_kadence_lists_every_kind_with_its_printer_columns(operator_process, kubectl):
    kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "examples" / "churn"))
    wait_for(lambda: ready_of(kubectl, "dataset", "churn"), timeout=60, message="dataset status")
    output = kubectl("get", "kadence", "-n", NAMESPACE).stdout
    for header in ("VALIDATED", "TRIALS", "MODEL-VERSION", "STABLE", "CANARY", "WEIGHT", "SERVICE"):
        assert header in output
    assert "dataset.kadence.dev/churn" in output


BAD_BANDS = {
    "apiVersion": "kadence.dev/v1alpha1",
    "kind": "FeatureSet",
    "metadata": {"name": "bad-bands"},
    "spec": {"datasetRef": {"name": "churn"},
             "features": [{"name": "band", "transform": {"type": "bucketize", "column": "tenure_months",
                                                          "boundaries": [48, 12]}}]},
}


def test_a_spec_that_passes_admission_but_not_the_operator_gets_invalid_spec_naming_the_field(operator_process,
                                                                                              kubectl):
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(BAD_BANDS))
    ready = wait_for(lambda: (c := ready_of(kubectl, "featureset", "bad-bands")) and c["reason"] == "InvalidSpec" and c,
                     timeout=60, message="InvalidSpec condition")
    assert ready["status"] == "False"
    assert "spec.features[0].transform.boundaries" in ready["message"]
    events = wait_for(
        lambda: [e for e in json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json",
                                               "--field-selector", "involvedObject.name=bad-bands").stdout)["items"]
                 if e["reason"] == "InvalidSpec"],
        timeout=30, message="InvalidSpec event")
    assert events[0]["type"] == "Warning"
    assert "boundaries" in events[0]["message"]


def test_the_operator_counts_invalid_specs_on_its_metrics_endpoint(operator_process, kubectl):
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps({**BAD_BANDS, "metadata": {"name": "bad-bands-2"}}))
    pattern = re.compile(r'^kadence_operator_reconcile_errors_total\{kind="FeatureSet",namespace="skeleton",'
                         r'reason="InvalidSpec"\} ([0-9.]+)$', re.M)

    def counted() -> float:
        try:
            match = pattern.search(httpx.get(operator_process.metrics_url, timeout=2).text)
        except httpx.HTTPError:
            return 0.0
        return float(match.group(1)) if match else 0.0

    assert wait_for(counted, timeout=60, message="reconcile error counted") >= 1


def test_fixing_the_spec_clears_invalid_spec_for_the_new_generation(operator_process, kubectl):
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(BAD_BANDS))
    invalid = wait_for(lambda: (c := ready_of(kubectl, "featureset", "bad-bands")) and c["reason"] == "InvalidSpec" and c,
                       timeout=60, message="InvalidSpec condition")
    fixed = json.loads(json.dumps(BAD_BANDS))
    fixed["spec"]["features"][0]["transform"]["boundaries"] = [12, 48]
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(fixed))
    ready = wait_for(lambda: (c := ready_of(kubectl, "featureset", "bad-bands")) and c["reason"] != "InvalidSpec" and c,
                     timeout=60, message="condition after the fix")
    assert ready["observedGeneration"] > invalid["observedGeneration"]
    if ready["status"] != invalid["status"]:
        assert ready["lastTransitionTime"] >= invalid["lastTransitionTime"]


def test_an_invalid_manifest_is_refused_at_admission_with_the_field_named(operator_process, kubectl):
    documents = list(yaml.safe_load_all((REPO / "examples" / "invalid" / "invalid-manifests.yaml").read_text()))
    unknown_format = next(d for d in documents if d["metadata"]["name"] == "unknown-format")
    result = kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(unknown_format), check=False)
    assert result.returncode != 0
    assert "spec.format" in result.stderr and "xlsx" in result.stderr
