"""A static security scan (checkov) of the rendered manifests: every finding is fixed in the
chart or justified here, with the reason, per check and object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helm import objects

CHECKOV_VERSION = "3.3.30"
# checkov pins its own dependency tree, which clashes with the project's: it gets a venv of
# its own in the user's cache, installed on first use with the ordinary pip client.
CHECKOV_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kadence-tests" / f"checkov-{CHECKOV_VERSION}"

JUSTIFIED = {
    ("CKV_K8S_11", "kadence-operator"): "no CPU limit on purpose: CFS throttling stalls kopf's watch and "
        "liveness loops under bursts; the CPU request reserves its share and the memory limit bounds it",
    ("CKV_K8S_11", "kadence-minio"): "same as the operator: throttling an S3 server only slows every workload",
    ("CKV_K8S_38", "kadence-operator"): "the operator is a Kubernetes controller: its pod is the one place the "
        "token must be mounted (the ServiceAccount itself sets automountServiceAccountToken: false)",
    ("CKV_K8S_38", "kadence-console"): "the console watches the Kadence objects with its own read-only "
        "ServiceAccount: its pod needs that token (the ServiceAccount sets automountServiceAccountToken: false)",
    ("CKV_K8S_15", "kadence-operator"): "images are pinned to the release version (or a digest with "
        "image.*.digest); IfNotPresent avoids a registry round trip per restart. Set pullPolicy: Always to taste",
    ("CKV_K8S_15", "kadence-minio"): "the bundled MinIO image is pinned to one RELEASE tag",
    ("CKV_K8S_43", "kadence-operator"): "a digest is only known once the image is published: the chart takes "
        "one in image.operator.digest (values-full.yaml sets it and passes)",
    ("CKV_K8S_43", "kadence-minio"): "the bundled MinIO is for trying Kadence out and pinned to a RELEASE tag",
    ("CKV_K8S_35", "kadence-operator"): "the S3 client (minio-py, through kadence.storage) reads its keys from "
        "KADENCE_S3_* environment variables; they come from a secretKeyRef, never from values",
    ("CKV_K8S_35", "kadence-minio"): "MinIO reads its root credentials from MINIO_ROOT_USER/PASSWORD",
}


def ensure_checkov() -> Path:
    executable = CHECKOV_VENV / "bin" / "checkov"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], check=True)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
                       check=True, timeout=280)
    return executable


@pytest.fixture(scope="module")
def findings(tmp_path_factory, default_render, full_render, external_storage_render) -> list[dict]:
    checkov = ensure_checkov()
    directory = tmp_path_factory.mktemp("rendered")
    for name, rendered in [("default", default_render), ("full", full_render), ("external", external_storage_render)]:
        (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(objects(rendered)))
    result = subprocess.run(
        [str(checkov), "--directory", str(directory), "--framework", "kubernetes", "--output", "json", "--quiet", "--compact"],
        capture_output=True, text=True, timeout=280,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert sum(r["summary"]["resource_count"] for r in reports) >= 40, "checkov must have scanned the objects"
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    return [check for r in reports for check in r["results"]["failed_checks"]]


def object_name(check: dict) -> str:
    # checkov names resources Kind.namespace.name[.labels…]
    return check["resource"].split(".")[2]


def test_every_checkov_finding_is_fixed_or_justified(findings):
    unjustified = sorted({(c["check_id"], object_name(c), c["check_name"]) for c in findings
                          if (c["check_id"], object_name(c)) not in JUSTIFIED})
    assert unjustified == []


def test_the_hardening_checks_pass_rather_than_being_justified(findings):
    hardening = {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_40",
                 "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_13", "CKV_K8S_31", "CKV2_K8S_6", "CKV_K8S_155", "CKV_K8S_49"}
    assert not [c["check_id"] for c in findings if c["check_id"] in hardening]
