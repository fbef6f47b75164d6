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


def test_workload_pods_read_every_storage_key_from_their_namespaces_tenant_secret_whatever_the_operator_holds():
    from kadence.builders.jobs import storage_env
    from kadence.handlers.common import workload_settings

    # the operator's own (admin) settings never reach a workload: only the tenant Secret does
    settings = workload_settings({"KADENCE_S3_ENDPOINT": "minio.storage:9000", "KADENCE_S3_BUCKET": "ml",
                                  "KADENCE_S3_ACCESS_KEY": "root", "KADENCE_S3_SECRET_KEY": "root-secret"})
    env = {e["name"]: e for e in storage_env(settings)}
    assert set(env) == {"KADENCE_S3_ENDPOINT", "KADENCE_S3_ACCESS_KEY", "KADENCE_S3_SECRET_KEY", "KADENCE_S3_BUCKET",
                        "KADENCE_S3_SECURE"}
    assert all(e["valueFrom"]["secretKeyRef"]["name"] == "kadence-tenant-storage" for e in env.values())
    assert env["KADENCE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "accessKey"
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
