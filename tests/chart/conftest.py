"""Session fixtures: the chart rendered once per values set."""

from __future__ import annotations

import pytest

from .helm import PROMETHEUS_OPERATOR, render, values_file

# An external endpoint with credentials from a Secret: what a production install sets.
EXTERNAL_STORAGE = {"storage": {"endpoint": "https://minio.minio.svc:9000", "existingSecret": "kadence-s3"}}


@pytest.fixture(scope="session")
def default_render() -> dict[str, str]:
    """`helm template` with the chart's defaults on a cluster without the Prometheus Operator."""
    return render({})


@pytest.fixture(scope="session")
def external_storage_render() -> dict[str, str]:
    return render(EXTERNAL_STORAGE, api_versions=(PROMETHEUS_OPERATOR,))


@pytest.fixture(scope="session")
def full_render() -> dict[str, str]:
    """Every feature at once (tests/chart/values-full.yaml) on a cluster with the Prometheus Operator."""
    return render(values_file("values-full.yaml"), api_versions=(PROMETHEUS_OPERATOR,))


# The sandbox's real API server and kubectl, for installing the rendered chart into it.
from tests.sandbox.conftest import kubectl, sandbox_apiserver, sandbox_kubeconfig, sandbox_state_dir  # noqa: E402,F401
