"""The chart rendered by Helm's engine: the objects each configuration yields, validated
against the Kubernetes OpenAPI schemas of a current release."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .helm import CHART, REPO, objects, render, notes

CRD_SOURCE = REPO / "crds"
CRD_COPY = CHART / "files" / "crds"
PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
KOPF_PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}


def by_kind(rendered, kind: str) -> list[dict]:
    return [o for o in objects(rendered) if o["kind"] == kind]


def one(rendered, kind: str, name: str | None = None) -> dict:
    found = [o for o in by_kind(rendered, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def operator_container(rendered) -> dict:
    return one(rendered, "Deployment", "kadence-operator")["spec"]["template"]["spec"]["containers"][0]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


# ---- the CRDs ---------------------------------------------------------------------------


def test_the_chart_copy_of_the_crds_is_identical_to_the_generated_crds():
    source = {p.name: p.read_text() for p in CRD_SOURCE.glob("*.yaml")}
    copy = {p.name: p.read_text() for p in CRD_COPY.glob("*.yaml")}
    assert len(source) == 8  # the eight kinds
    assert copy == source, "run: cp crds/*.yaml charts/kadence/files/crds/"


def test_rendered_crds_carry_the_generated_schema_unchanged_plus_keep_and_labels(default_render):
    rendered = {c["metadata"]["name"]: c for c in by_kind(default_render, "CustomResourceDefinition")}
    for path in CRD_SOURCE.glob("*.yaml"):
        source = yaml.safe_load(path.read_text())
        crd = rendered.pop(source["metadata"]["name"])
        assert crd["spec"] == source["spec"], path.name
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kadence"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert rendered == {}, "no other CRD"


def test_crds_are_left_out_when_disabled_and_not_kept_when_keep_is_off():
    assert by_kind(render({"crds": {"enabled": False}}), "CustomResourceDefinition") == []
    for crd in by_kind(render({"crds": {"keep": False}}), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_several_replicas_elect_a_leader_through_a_lease_in_the_release_namespace(full_render):
    args = operator_container(full_render)["args"]
    assert "--leader-election-lease=kadence" in args
    assert "--leader-election-namespace=kadence-system" in args
    env = {e["name"]: e for e in operator_container(full_render)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert not [o for o in objects(full_render) if o.get("apiVersion", "").startswith("kopf.dev/")]
    assert not [c for c in by_kind(full_render, "CustomResourceDefinition") if c["spec"]["group"] == "kopf.dev"]


def test_the_lease_can_be_named_and_all_namespaces_with_several_replicas_roll_and_keep_one_through_drains():
    rendered = render({"operator": {"replicas": 2, "leaderElection": {"leaseName": "ml-operator"}}})
    assert "--leader-election-lease=ml-operator" in operator_container(rendered)["args"]
    role = one(rendered, "Role", "kadence-leader-election")
    assert role["metadata"]["namespace"] == "kadence-system"
    assert [r.get("resourceNames") for r in role["rules"]] == [None, ["ml-operator"]]
    assert one(rendered, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert one(rendered, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_a_single_replica_runs_alone_and_is_replaced_not_doubled(default_render):
    assert "--leader-election" not in " ".join(operator_container(default_render)["args"])
    assert [r for r in by_kind(default_render, "Role") if r["metadata"]["name"] == "kadence-leader-election"] == []
    assert one(default_render, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert by_kind(default_render, "PodDisruptionBudget") == []


# ---- the operator Deployment ---------------------------------------------------------------


@pytest.mark.parametrize("rendering", ["default_render", "full_render"])
def test_the_operator_runs_non_root_read_only_without_privileges_and_with_a_writable_tmp(rendering, request):
    rendered = request.getfixturevalue(rendering)
    pod = one(rendered, "Deployment", "kadence-operator")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsUser"] >= 10000
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_the_default_install_watches_all_namespaces_with_the_package_version_images(default_render):
    container = operator_container(default_render)
    assert container["args"] == ["operator", "--liveness=http://0.0.0.0:8080/healthz"]
    assert container["image"] == "ghcr.io/kadence-dev/kadence-operator:0.1.0"
    env = env_of(container)
    assert env["KADENCE_WORKLOAD_IMAGE"]["value"] == "ghcr.io/kadence-dev/kadence-workloads:0.1.0"
    assert env["KADENCE_WORKLOAD_SERVICE_ACCOUNT"]["value"] == "kadence-workloads"
    assert "KADENCE_S3_ENDPOINT" not in env, "no storage configured: nothing pretends there is"
    assert "WARNING: no object storage is configured" in notes(default_render)


def test_an_mlflow_tracking_uri_reaches_the_operator_only_when_set(default_render, full_render):
    assert "KADENCE_MLFLOW_TRACKING_URI" not in env_of(operator_container(default_render))
    env = env_of(operator_container(full_render))
    assert env["KADENCE_MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow.svc:5000"


def test_a_watched_namespace_list_becomes_namespace_flags_and_pinned_digests_win(full_render):
    container = operator_container(full_render)
    assert "--namespace=ml-team-a" in container["args"] and "--namespace=ml-team-b" in container["args"]
    assert container["image"].endswith("kadence-operator:0.1.0@sha256:" + "0123456789abcdef" * 4)
    assert env_of(container)["KADENCE_WORKLOAD_IMAGE_PULL_SECRETS"]["value"] == "mirror-credentials,regcred"
    pod = one(full_render, "Deployment", "kadence-operator")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "mirror-credentials"}, {"name": "regcred"}]


def test_storage_comes_from_the_endpoint_and_the_existing_secret(external_storage_render):
    env = env_of(operator_container(external_storage_render))
    assert env["KADENCE_S3_ENDPOINT"]["value"] == "https://minio.minio.svc:9000"
    assert env["KADENCE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "kadence-s3", "key": "access-key"}
    assert env["KADENCE_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "kadence-s3", "key": "secret-key"}
    # the admin keys are the operator's alone: nothing tells workloads where they are
    assert not [name for name in env if name.startswith("KADENCE_S3_CREDENTIALS")]
    assert env["KADENCE_TENANCY"]["value"] == "shared"


def test_an_endpoint_without_a_credentials_secret_is_refused_with_the_key_to_set():
    with pytest.raises(Exception, match="storage.existingSecret is required"):
        render({"storage": {"endpoint": "https://s3.example.com"}})


def test_the_bundled_minio_is_off_by_default_and_wired_in_when_enabled(default_render, full_render):
    assert not [p for p in default_render if "/charts/minio/" in p]
    minio = one(full_render, "Deployment", "kadence-minio")
    assert minio["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert one(full_render, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "20Gi"
    env = env_of(operator_container(full_render))
    assert env["KADENCE_S3_ENDPOINT"]["value"] == "kadence-minio.kadence-system.svc:9000"
    assert env["KADENCE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "kadence-minio", "key": "root-user"}
    assert env["KADENCE_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "kadence-minio", "key": "root-password"}
    assert env["KADENCE_TENANCY"]["value"] == "minio", "with the bundled MinIO each namespace gets its own user"
    secret = one(full_render, "Secret", "kadence-minio")
    assert set(secret["data"]) == {"root-user", "root-password"}


def test_names_are_cut_to_63_characters():
    rendered = render({"operator": {"replicas": 2}}, release="a-release-name-that-is-far-too-long-for-kubernetes-labels-x")
    for obj in objects(rendered):
        if obj["kind"] != "CustomResourceDefinition":
            assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        for value in (obj["metadata"].get("labels") or {}).values():
            assert len(value) <= 63


# ---- Kubernetes schema validation ----------------------------------------------------------


@pytest.mark.parametrize("rendering", ["default_render", "external_storage_render", "full_render"])
def test_every_built_in_object_is_valid_for_the_latest_kubernetes_strictly(rendering, request):
    version = kubernetes_validate.utils.latest_version()
    checked = 0
    for obj in objects(request.getfixturevalue(rendering)):
        if obj["kind"] in PROMETHEUS_OPERATOR_KINDS | KOPF_PEERING_KINDS:
            continue  # objects of third-party CRDs: see test_monitoring.py and the sandbox test
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 14
