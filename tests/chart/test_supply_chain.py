"""Supply chain and tenancy in the chart: the bundled MinIO at a release with 2025's fixes and
pinnable by digest, the tenancy mode the operator gets, and the one Secret it may write."""

from __future__ import annotations

import pytest

from .helm import objects, render
from .test_render import env_of, one, operator_container


def minio_image(rendered) -> str:
    return one(rendered, "Deployment", "kadence-minio")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_bundled_minio_runs_a_release_with_the_2025_fixes(full_render):
    image = minio_image(full_render)
    assert image.startswith("quay.io/minio/minio:RELEASE.")
    release = image.split(":RELEASE.")[1][:10]
    assert release >= "2025-04-03", "CVE-2025-31489 is fixed in RELEASE.2025-04-03T14-56-28Z"


def test_a_minio_digest_pins_the_image_and_an_old_release_is_refused():
    digest = "sha256:" + "ab" * 32
    rendered = render({"minio": {"enabled": True, "image": {"digest": digest}}})
    assert minio_image(rendered).endswith(f":RELEASE.2025-09-07T16-13-09Z@{digest}")
    with pytest.raises(Exception, match="tag"):
        render({"minio": {"enabled": True, "image": {"tag": "RELEASE.2024-12-18T13-15-44Z"}}})
    with pytest.raises(Exception, match="digest"):
        render({"minio": {"enabled": True, "image": {"digest": "latest"}}})


def test_kadence_image_digests_reach_the_operator_and_the_workloads_it_starts():
    operator_digest, workloads_digest = "sha256:" + "01" * 32, "sha256:" + "fe" * 32
    rendered = render({"image": {"operator": {"digest": operator_digest}, "workloads": {"digest": workloads_digest}}})
    container = operator_container(rendered)
    assert container["image"] == f"ghcr.io/kadence-dev/kadence-operator:0.1.0@{operator_digest}"
    assert env_of(container)["KADENCE_WORKLOAD_IMAGE"]["value"] == \
        f"ghcr.io/kadence-dev/kadence-workloads:0.1.0@{workloads_digest}"


@pytest.mark.parametrize("values, mode", [
    ({"storage": {"endpoint": "https://s3.example.com", "existingSecret": "s3"}}, "shared"),
    ({"storage": {"endpoint": "https://minio.example.com", "existingSecret": "s3", "tenancy": "minio"}}, "minio"),
    ({"minio": {"enabled": True}}, "minio"),
    ({"minio": {"enabled": True}, "storage": {"tenancy": "shared"}}, "shared"),
], ids=["external storage defaults to shared", "external MinIO with tenancy minio", "the bundled MinIO",
        "an explicit shared overrides"])
def test_the_operator_is_told_how_namespaces_are_kept_apart(values, mode):
    assert env_of(operator_container(render(values)))["KADENCE_TENANCY"]["value"] == mode


def test_a_tenancy_mode_the_operator_does_not_know_is_refused():
    with pytest.raises(Exception, match="tenancy"):
        render({"storage": {"tenancy": "aws-iam"}})


def test_the_operator_may_write_the_tenant_secret_by_name_and_read_no_other(full_render, default_render):
    for rendered in (full_render, default_render):
        for role in [o for o in objects(rendered) if o["kind"] in ("ClusterRole", "Role")]:
            for rule in role["rules"]:
                if "secrets" not in rule["resources"]:
                    continue
                assert set(rule["verbs"]) <= {"create", "get", "patch"}
                if {"get", "patch"} & set(rule["verbs"]):
                    assert rule.get("resourceNames"), (role["metadata"]["name"], rule)
    cluster_role = one(default_render, "ClusterRole", "kadence-operator")
    assert {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kadence-tenant-storage"],
            "verbs": ["get", "patch"]} in cluster_role["rules"]
