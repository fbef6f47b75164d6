"""The rendered chart installed into the sandbox's API server with the real kubectl, the way
`helm install` orders it: namespaces, CRDs (established), the release's objects, then the
post-install hooks (none today)."""

from __future__ import annotations

import json

import pytest
import yaml

from .helm import objects, render, values_file

pytestmark = pytest.mark.sandbox

RELEASE_NAMESPACE = "kadence-chart-test"


def install(kubectl, values: dict) -> list[dict]:
    rendered = objects(render(values, namespace=RELEASE_NAMESPACE))
    namespaces = sorted({o["metadata"]["namespace"] for o in rendered if o["metadata"].get("namespace")})
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]))
    crds = [o for o in rendered if o["kind"] == "CustomResourceDefinition"]
    hooks = [o for o in rendered if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
    release = [o for o in rendered if o not in crds and o not in hooks]
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(crds))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            *[f"crd/{c['metadata']['name']}" for c in crds])
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(release))
    if hooks:
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all(hooks))
    return rendered


def get(kubectl, kind: str, name: str, namespace: str | None = None) -> dict:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    return json.loads(kubectl(*args).stdout)


def test_the_default_chart_is_accepted_and_its_objects_read_back_as_rendered(kubectl):
    rendered = install(kubectl, {"storage": {"endpoint": "https://minio.minio.svc:9000", "existingSecret": "kadence-s3"}})
    deployment = get(kubectl, "deployment", "kadence-operator", RELEASE_NAMESPACE)
    expected = next(o for o in rendered if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == expected["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert container["args"] == ["operator", "--liveness=http://0.0.0.0:8080/healthz"]
    role = get(kubectl, "clusterrole", "kadence-operator")
    assert role["rules"] == next(o for o in rendered if o["kind"] == "ClusterRole"
                                 and o["metadata"]["name"] == "kadence-operator")["rules"]
    binding = get(kubectl, "clusterrolebinding", "kadence-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kadence", "namespace": RELEASE_NAMESPACE}]
    assert get(kubectl, "serviceaccount", "kadence-workloads", RELEASE_NAMESPACE)["automountServiceAccountToken"] is False
    for plural in ("datasets", "featuresets", "trainingruns", "modelversions", "inferenceservices", "monitorpolicies"):
        crd = get(kubectl, "crd", f"{plural}.kadence.dev")
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        kubectl("get", plural, "-A")  # served: kubectl finds the resource through discovery


def test_the_full_chart_with_leader_election_scoped_roles_and_minio_is_accepted(kubectl):
    install(kubectl, values_file("values-full.yaml"))
    for namespace in ("ml-team-a", "ml-team-b"):
        assert get(kubectl, "rolebinding", "kadence-operator", namespace)["roleRef"]["name"] == "kadence-operator"
    lease_role = get(kubectl, "role", "kadence-leader-election", RELEASE_NAMESPACE)
    assert any(r["resources"] == ["leases"] for r in lease_role["rules"])
    assert get(kubectl, "deployment", "kadence-operator", RELEASE_NAMESPACE)["spec"]["replicas"] == 3
    assert get(kubectl, "poddisruptionbudget", "kadence-operator", RELEASE_NAMESPACE)["spec"]["minAvailable"] == 1
    assert get(kubectl, "deployment", "kadence-minio", RELEASE_NAMESPACE)["spec"]["strategy"]["type"] == "Recreate"
    storage = get(kubectl, "role", "kadence-storage", RELEASE_NAMESPACE)
    assert storage["rules"][0]["resourceNames"] == ["kadence-minio"]
