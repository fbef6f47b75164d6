import re

import pytest

from kadence.builders.meta import child_metadata, child_name, cut_name, owner_reference

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
OWNER = {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
         "metadata": {"name": "churn-initial", "namespace": "ml", "uid": "u-1"}}


@pytest.mark.parametrize("name", ["short", "x" * 63, "y" * 64, "a-" * 50, "Mixed-Case-" * 10])
def test_a_cut_name_is_a_dns_label_of_at_most_63_characters(name):
    cut = cut_name(name)
    assert len(cut) <= 63 and DNS_LABEL.match(cut)


def test_a_short_name_is_kept_as_it_is():
    assert cut_name("churn-train-1") == "churn-train-1"


def test_two_long_names_sharing_a_prefix_stay_distinct():
    assert cut_name("p" * 70 + "-1") != cut_name("p" * 70 + "-2")


def test_the_same_long_name_always_cuts_the_same_way():
    assert cut_name("q" * 100) == cut_name("q" * 100)


def test_child_names_join_the_parts():
    assert child_name("churn", "train", 2) == "churn-train-2"


def test_children_are_owned_by_their_parent_as_controller():
    reference = owner_reference(OWNER)
    assert reference == {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun", "name": "churn-initial",
                         "uid": "u-1", "controller": True, "blockOwnerDeletion": True}


def test_child_metadata_lives_in_the_owners_namespace_with_selector_labels():
    meta = child_metadata(OWNER, "churn-initial-train-1", "train", {"kadence.dev/attempt": "1"})
    assert meta["namespace"] == "ml"
    assert meta["labels"]["kadence.dev/owner-kind"] == "trainingrun"
    assert meta["labels"]["kadence.dev/owner-name"] == "churn-initial"
    assert meta["labels"]["kadence.dev/attempt"] == "1"


def test_workload_jobs_read_the_store_as_the_helm_chart_configures_it():
    from kadence.builders.jobs import storage_env
    from kadence.handlers.common import workload_settings

    settings = workload_settings({
        "KADENCE_S3_CREDENTIALS_SECRET": "minio-creds", "KADENCE_S3_ENDPOINT": "minio.storage:9000",
        "KADENCE_S3_BUCKET": "ml", "KADENCE_S3_CREDENTIALS_ACCESS_KEY_FIELD": "rootUser",
        "KADENCE_S3_CREDENTIALS_SECRET_KEY_FIELD": "rootPassword"})
    env = {e["name"]: e for e in storage_env(settings)}
    assert env["KADENCE_S3_ENDPOINT"] == {"name": "KADENCE_S3_ENDPOINT", "value": "minio.storage:9000"}
    assert env["KADENCE_S3_BUCKET"]["value"] == "ml"
    assert env["KADENCE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "rootUser"}
    assert env["KADENCE_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "rootPassword"}


def test_in_the_sandbox_workload_jobs_read_every_storage_key_from_the_secret():
    from kadence.builders.jobs import storage_env
    from kadence.handlers.common import workload_settings

    env = {e["name"]: e for e in storage_env(workload_settings({"KADENCE_S3_ENDPOINT": "127.0.0.1:9000"}))}
    assert env["KADENCE_S3_ENDPOINT"]["valueFrom"]["secretKeyRef"] == {"name": "kadence-storage", "key": "endpoint"}
    assert env["KADENCE_S3_BUCKET"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_workload_and_server_pods_take_the_charts_service_account_pull_policy_and_pull_secrets():
    from kadence.builders.jobs import workload_job
    from kadence.builders.serving import serving_deployment
    from kadence.handlers.common import workload_settings

    settings = workload_settings({"KADENCE_WORKLOAD_SERVICE_ACCOUNT": "kadence-workloads",
                                  "KADENCE_WORKLOAD_IMAGE": "registry.example/kadence:1",
                                  "KADENCE_WORKLOAD_IMAGE_PULL_POLICY": "IfNotPresent",
                                  "KADENCE_WORKLOAD_IMAGE_PULL_SECRETS": "regcred, other"})
    job = workload_job(OWNER, "churn-initial-train-1", "train", ["kadence", "train"], settings)
    server = serving_deployment(OWNER, "stable", 1, {"model": "m"}, 1, settings)
    for pod in (job["spec"]["template"]["spec"], server["spec"]["template"]["spec"]):
        assert pod["serviceAccountName"] == "kadence-workloads"
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
        assert pod["containers"][0]["image"] == "registry.example/kadence:1"
        assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_model_server_pods_run_native_libraries_on_one_thread_per_process():
    from kadence.builders.serving import serving_deployment
    from kadence.handlers.common import workload_settings

    server = serving_deployment(OWNER, "stable", 1, {"model": "m"}, 1, workload_settings({}))
    env = {e["name"]: e.get("value") for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
