"""The images: hadolint-clean multi-stage Dockerfiles, non-root, pinned bases; and one name
and tag shared by operator/kadence/images.py, the chart and the Dockerfiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kadence import __version__, images

from .helm import CHART, REPO, objects, render

BIN = Path(sys.executable).parent
DOCKERFILES = {"kadence-operator": REPO / "images" / "operator" / "Dockerfile",
               "kadence-workloads": REPO / "images" / "workloads" / "Dockerfile"}


def stages(dockerfile: Path) -> list[list[str]]:
    """The instructions of each stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_hadolint_finds_nothing_in_either_dockerfile():
    result = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "info", *map(str, DOCKERFILES.values())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("title", DOCKERFILES)
def test_each_dockerfile_builds_in_one_stage_and_runs_non_root_from_a_pinned_base_in_another(title):
    dockerfile = DOCKERFILES[title]
    text = dockerfile.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    build, final = stages(dockerfile)
    assert build[0] == "FROM ${PYTHON_IMAGE} AS build"
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert any(i.startswith("COPY --from=build /opt/kadence /opt/kadence") for i in final)
    users = [i for i in final if i.startswith("USER ")]
    assert users == ["USER 10001:10001"], "the runtime stage ends as a non-root UID"
    assert not any(re.search(r"\b(apt-get|gcc|make|build-essential)\b", i) for i in final), "no build tools at runtime"
    assert any("pip uninstall --yes pip setuptools wheel" in i for i in final)
    assert f'org.opencontainers.image.title="{title}"' in text
    assert re.search(r"^ARG KADENCE_VERSION=(\S+)$", text, re.M).group(1) == __version__


def test_the_operator_security_context_uses_the_images_uid():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["securityContext"]["runAsUser"] == 10001
    assert values["operator"]["podSecurityContext"]["runAsGroup"] == 10001


def test_chart_images_and_dockerfiles_agree_with_the_names_in_the_package():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == images.TAG == __version__
    values = yaml.safe_load((CHART / "values.yaml").read_text())["image"]
    assert (values["operator"]["registry"], values["operator"]["repository"]) == (images.REGISTRY, images.OPERATOR_REPOSITORY)
    assert (values["workloads"]["registry"], values["workloads"]["repository"]) == (images.REGISTRY, images.WORKLOAD_REPOSITORY)
    assert set(DOCKERFILES) == {images.OPERATOR_REPOSITORY, images.WORKLOAD_REPOSITORY}
    for title, dockerfile in DOCKERFILES.items():
        assert f"-t {images.REGISTRY}/{title}:{images.TAG} ." in dockerfile.read_text()


def test_the_rendered_chart_runs_the_package_images(default_render):
    deployment = next(o for o in objects(default_render) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == images.OPERATOR_IMAGE
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KADENCE_WORKLOAD_IMAGE"] == images.WORKLOAD_IMAGE


def test_a_mirror_registry_replaces_every_kadence_image():
    rendered = render({"global": {"imageRegistry": "registry.example.com/mirror"}})
    deployment = next(o for o in objects(rendered) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.example.com/mirror/{images.OPERATOR_REPOSITORY}:{images.TAG}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KADENCE_WORKLOAD_IMAGE"] == f"registry.example.com/mirror/{images.WORKLOAD_REPOSITORY}:{images.TAG}"
