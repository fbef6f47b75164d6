"""Issue 19.4 in the sandbox: `kadence sandbox up --mlflow`'s tracking server, an operator configured
with it, TrainingRuns and stage changes driven with kubectl, and everything read back through
MLflow's own client: the run, its child run per trial, the registered versions and their aliases.

One scenario, run once (module-scoped): a first run is promoted to Production (alias champion); a
second stays Candidate until a person approves it to Staging (challenger) and then promotes it to
Production (champion moves to it, the first is archived and loses it)."""

from __future__ import annotations

import io
import json

import pytest

from kadence.sandbox import cli as sandbox_cli
from kadence.sandbox import mlflow as sandbox_mlflow

from .conftest import process_alive, wait_for
from .operator_process import condition, get_json, running_operator
from .test_training_loop import apply, data_and_features, finished, training_run

mlflow = pytest.importorskip("mlflow")

NAMESPACE = "mlflow-loop"
# The scenario (two trainings, four stage changes, each mirrored by a Job) runs in the first test's setup.
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]


CORE = {"s3", "apiserver", "node", "operator"}


@pytest.mark.parametrize("recorded, alive, missing", [
    (CORE, CORE, []),  # started without --mlflow: complete
    (CORE | {"mlflow"}, CORE | {"mlflow"}, []),
    (CORE | {"mlflow"}, CORE, ["mlflow"]),  # started with it, and it stopped
    (CORE, CORE - {"node"}, ["node"]),
])
def test_a_sandbox_without_the_tracking_server_is_complete_one_whose_server_stopped_is_not(recorded, alive, missing):
    assert sandbox_cli.missing_components(dict.fromkeys(recorded), set(alive)) == missing


@pytest.fixture(scope="module")
def tracking_server(sandbox_s3, tmp_path_factory):
    """The MLflow server as `kadence sandbox up --mlflow` starts it (SQLite, artifacts in the sandbox S3)."""
    state_dir = tmp_path_factory.mktemp("mlflow-sandbox")
    summary: dict = {}
    port = sandbox_cli.start_mlflow(state_dir, sandbox_s3, summary, io.StringIO(), die_with_parent=True)
    yield {"state_dir": state_dir, "port": port, "uri": summary["mlflow"]}
    sandbox_cli.stop_all(state_dir, out=io.StringIO())


@pytest.fixture(scope="module")
def operator(tracking_server, sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE,
                          extra_env={"KADENCE_MLFLOW_TRACKING_URI": tracking_server["uri"]}) as process:
        yield process


@pytest.fixture(scope="module")
def client(tracking_server):
    # The fluent API (mlflow.models.get_model_info) reads both process globals; another module in this
    # worker (kadence track's sync, run in-process) may have pointed the registry at its own store.
    mlflow.set_tracking_uri(tracking_server["uri"])
    mlflow.set_registry_uri(tracking_server["uri"])
    return mlflow.MlflowClient(tracking_uri=tracking_server["uri"], registry_uri=tracking_server["uri"])


def model_version_where(kubectl, name: str, predicate) -> dict:
    seen: dict = {}

    def check():
        seen["object"] = get_json(kubectl, NAMESPACE, "modelversion", name)
        return seen["object"] if seen["object"] and predicate(seen["object"]) else None

    try:
        return wait_for(check, timeout=180, message=f"ModelVersion {name}")
    except AssertionError as error:
        jobs = kubectl("get", "jobs", "-n", NAMESPACE, check=False).stdout
        raise AssertionError(f"{error}; its status: {(seen['object'] or {}).get('status')}; jobs:\n{jobs}") from None


def synced(stage: str):
    def check(version: dict) -> bool:
        tracked = condition(version, "Tracked") or {}
        return (version.get("status") or {}).get("stage") == stage and tracked.get("status") == "True" \
            and f"stage {stage}" in tracked.get("message", "")
    return check


@pytest.fixture(scope="module")
def scenario(operator, kubectl, client, tmp_path_factory):
    data_and_features(kubectl, tmp_path_factory.mktemp("mlflow-data"), NAMESPACE)
    apply(kubectl, training_run("first"), NAMESPACE)
    first = wait_for(lambda: finished(kubectl, "first", NAMESPACE), timeout=300, message="first run finished")
    assert first["status"]["phase"] == "Succeeded", first["status"]
    v1 = model_version_where(kubectl, first["status"]["modelVersion"], synced("Production"))
    aliases_after_first = aliases(client)

    apply(kubectl, training_run("second", promotion={"mode": "Candidate"}, seed=4), NAMESPACE)
    second = wait_for(lambda: finished(kubectl, "second", NAMESPACE), timeout=300, message="second run finished")
    assert second["status"]["phase"] == "Succeeded", second["status"]
    v2_name = second["status"]["modelVersion"]
    model_version_where(kubectl, v2_name, synced("Candidate"))
    # A person approves the candidate, then promotes it, with kubectl.
    kubectl("annotate", "modelversion", v2_name, "-n", NAMESPACE, "--overwrite",
            "kadence.dev/changed-by=alice", "kadence.dev/reason=approved for a challenger canary")
    kubectl("patch", "modelversion", v2_name, "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"stage":"Staging"}}')
    model_version_where(kubectl, v2_name, synced("Staging"))
    aliases_with_challenger = aliases(client)
    kubectl("patch", "modelversion", v2_name, "-n", NAMESPACE, "--type=merge",
            "-p", '{"spec":{"stage":"Production"}}')
    v2 = model_version_where(kubectl, v2_name, synced("Production"))
    v1 = model_version_where(kubectl, v1["metadata"]["name"], synced("Archived"))
    return {"first": get_json(kubectl, NAMESPACE, "trainingrun", "first"), "second": second, "v1": v1, "v2": v2,
            "aliases_after_first": aliases_after_first, "aliases_with_challenger": aliases_with_challenger}


def aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model("churn").aliases.items()}


def mlflow_version_of(client, model_version: dict):
    found = client.search_model_versions(f"name = 'churn' and run_id = '{model_version['spec']['lineage']['mlflowRunId']}'")
    assert len(found) == 1, found
    return found[0]


def test_each_trainingrun_is_an_mlflow_run_in_the_models_experiment_pointing_back_to_it(scenario, client):
    run_body = scenario["first"]
    tracked = condition(run_body, "Tracked")
    assert tracked["status"] == "True" and tracked["reason"] == "Logged"
    run_id = scenario["v1"]["spec"]["lineage"]["mlflowRunId"]
    assert run_id in tracked["message"]
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "churn"
    assert run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("kadence.namespace", "kadence.kind", "kadence.name", "kadence.uid")} == {
        "kadence.namespace": NAMESPACE, "kadence.kind": "TrainingRun", "kadence.name": "first",
        "kadence.uid": run_body["metadata"]["uid"]}
    assert run.data.metrics["holdout_f1"] == pytest.approx(run_body["status"]["metrics"]["f1"])
    features = scenario["v1"]["spec"]["lineage"]
    inputs = {(i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs}
    assert inputs == {("FeatureSet/churn-features", features["featureSetVersion"])}


def test_each_trial_is_a_child_run_with_its_params_fold_metrics_and_duration(scenario, client):
    run_id = scenario["v1"]["spec"]["lineage"]["mlflowRunId"]
    experiment = client.get_run(run_id).info.experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == scenario["first"]["status"]["trials"]["done"] == 2
    for child in children:
        assert child.data.params["family"] == "logistic_regression"
        assert {"cv_f1_fold0", "duration_seconds"} <= set(child.data.metrics)
        assert child.data.tags["kadence.pruned"] in ("true", "false")


def test_the_champion_loads_from_mlflow_with_its_signature_and_predicts_like_the_served_artifact(scenario, client,
                                                                                                 sandbox_s3):
    from mlflow.models import get_model_info

    from kadence.domain.synthetic import churn_frame
    from kadence.domain.training.artifact import loads
    from kadence.sandbox import s3

    v2 = scenario["v2"]
    info = get_model_info("models:/churn@champion")
    inputs = [c["name"] for c in v2["spec"]["signature"]["inputs"]]
    assert [c["name"] for c in info.signature.inputs.to_dict()] == inputs
    rows = churn_frame(20, seed=5)[inputs]
    bucket, key = v2["spec"]["artifact"]["uri"][len("s3://"):].split("/", 1)
    served = loads(s3.client(sandbox_s3).get_object(bucket, key).read(), v2["spec"]["artifact"]["sha256"])
    assert mlflow.sklearn.load_model("models:/churn@champion").predict(rows).tolist() == served.predict(rows).tolist()
    stored = [o.object_name for o in s3.client(sandbox_s3).list_objects(sandbox_s3.bucket, prefix="mlflow/",
                                                                        recursive=True)]
    assert any(name.endswith("model.skops") for name in stored), stored[:20]


def test_each_modelversion_is_registered_with_its_stage_mirrored_as_an_alias(scenario, client):
    v1, v2 = scenario["v1"], scenario["v2"]
    first, second = mlflow_version_of(client, v1), mlflow_version_of(client, v2)
    assert first.tags["kadence.modelVersion"] == v1["metadata"]["name"]
    assert first.tags["kadence.kind"] == "ModelVersion" and first.tags["kadence.namespace"] == NAMESPACE
    assert scenario["aliases_after_first"] == {"champion": first.version}
    assert scenario["aliases_with_challenger"] == {"champion": first.version, "challenger": second.version}
    # Production moved to the second version: champion follows, the archived first keeps no alias.
    assert aliases(client) == {"champion": second.version}
    assert client.get_model_version_by_alias("churn", "champion").tags["kadence.stage"] == "Production"
    assert client.get_model_version("churn", first.version).tags["kadence.stage"] == "Archived"


def test_tracked_is_informational_and_ready_stays_true(scenario):
    for version in (scenario["v1"], scenario["v2"]):
        assert condition(version, "Ready")["status"] == "True"
        assert condition(version, "Tracked")["reason"] == "Synced"


def test_sandbox_down_stops_the_tracking_server(scenario, tracking_server):
    record = next(r for r in sandbox_cli.supervisor.read_records(tracking_server["state_dir"])
                  if r.name == sandbox_mlflow.COMPONENT)
    assert record.alive() and sandbox_mlflow.answers(tracking_server["port"])
    assert sandbox_cli.stop_all(tracking_server["state_dir"], out=io.StringIO()) == []
    assert not process_alive(record.pid) and not sandbox_mlflow.answers(tracking_server["port"])
