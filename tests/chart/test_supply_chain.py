"""Supply chain and tenancy in the chart: the bundled MinIO at a release with 2025's fixes and
pinnable by digest, the tenancy mode the operator gets, and the one Secret it may write."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .helm import REPO, objects, render
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


# ---- hash-pinned lock files for the images' Python dependencies (images/README.md) ----------


LOCKS = {"operator": (REPO / "images" / "operator" / "requirements.txt", ()),
         "workloads": (REPO / "images" / "workloads" / "requirements.txt",
                       ("train", "serve", "fairness", "mlflow", "boosting", "ray"))}
BUILD_LOCK = REPO / "images" / "requirements-build.txt"


def pins(path) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)} of a pip-compile --generate-hashes file; fails on any other line."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        pinned = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s\\]+)\s*\\", text)
        hashed = re.fullmatch(r"--hash=sha256:([0-9a-f]{64})\s*\\?", text)
        if pinned:
            current = canonicalize_name(pinned.group(1))
            found[current] = (pinned.group(2), [])
        elif hashed and current:
            found[current][1].append(hashed.group(1))
        else:
            raise AssertionError(f"{path.name}: not a pinned, hashed requirement: {line!r}")
    return found


@pytest.mark.parametrize("image", LOCKS)
def test_every_dependency_of_an_image_is_pinned_to_one_version_with_hashes(image):
    path, _ = LOCKS[image]
    locked = pins(path)
    assert locked and all(hashes for _, hashes in locked.values()), "every pin carries its files' sha256"
    assert "--require-hashes" in (REPO / "images" / image / "Dockerfile").read_text()


@pytest.mark.parametrize("image", LOCKS)
def test_the_pins_satisfy_pyproject_so_the_lock_is_not_stale(image):
    path, extras = LOCKS[image]
    locked = pins(path)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is missing from {path}: regenerate it (images/README.md)"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), \
            f"{path.name} pins {name}=={locked[name][0]}, outside {requirement}: regenerate it (images/README.md)"
    assert Requirement("skops>=0.12").specifier.contains(locked["skops"][0])


def test_the_build_backend_is_pinned_and_the_dockerfiles_install_kadence_without_the_index():
    locked = pins(BUILD_LOCK)
    assert {"setuptools", "wheel"} <= set(locked)
    backend = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    for requirement in map(Requirement, backend):
        assert requirement.specifier.contains(locked[canonicalize_name(requirement.name)][0])
    for image in LOCKS:
        dockerfile = (REPO / "images" / image / "Dockerfile").read_text()
        assert f"COPY images/requirements-build.txt images/{image}/requirements.txt ./" in dockerfile
        assert "pip install --no-index --no-deps --no-build-isolation ." in dockerfile
        ignore = (REPO / "images" / image / "Dockerfile.dockerignore").read_text()
        assert f"!images/{image}/requirements.txt" in ignore and "!images/requirements-build.txt" in ignore
