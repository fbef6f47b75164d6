"""The operator's Kubernetes client follows a rotated token without a restart, as client-go does."""

from __future__ import annotations

import pytest
import yaml
from kubernetes.config import kube_config

from kadence.k8s import client as k8s_client


def write_kubeconfig(path, user: dict) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
        "clusters": [{"name": "sandbox", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "operator", "user": user}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "operator"}}],
    }))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def outside_a_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # the client reads KUBECONFIG once, when it is imported
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    return tmp_path / "kubeconfig"


def bearer(configuration) -> str:
    return configuration.get_api_key_with_prefix("BearerToken")


def test_a_token_rotated_in_the_kubeconfig_is_used_once_the_file_is_read_again(outside_a_cluster):
    write_kubeconfig(outside_a_cluster, {"token": "first"})
    clock = Clock()
    configuration = k8s_client.configuration(clock)
    assert bearer(configuration) == "Bearer first"
    write_kubeconfig(outside_a_cluster, {"token": "second"})
    clock.now += k8s_client.REREAD_SECONDS / 2
    assert bearer(configuration) == "Bearer first", "read again at most once a minute, not on every request"
    clock.now += k8s_client.REREAD_SECONDS
    assert bearer(configuration) == "Bearer second"


def test_a_rotated_token_file_named_by_the_kubeconfig_is_read_again(outside_a_cluster, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first")
    write_kubeconfig(outside_a_cluster, {"tokenFile": str(token_file)})
    clock = Clock()
    configuration = k8s_client.configuration(clock)
    assert bearer(configuration) == "Bearer first"
    token_file.write_text("second")
    clock.now += k8s_client.REREAD_SECONDS
    assert bearer(configuration) == "Bearer second"


def test_a_kubeconfig_that_cannot_be_read_again_keeps_the_last_good_token(outside_a_cluster):
    write_kubeconfig(outside_a_cluster, {"token": "first"})
    clock = Clock()
    configuration = k8s_client.configuration(clock)
    outside_a_cluster.write_text("users: [not a kubeconfig")
    clock.now += k8s_client.REREAD_SECONDS
    assert bearer(configuration) == "Bearer first"


def test_in_a_pod_a_rotated_service_account_token_is_read_again_within_a_minute(monkeypatch, tmp_path):
    import datetime as real_datetime
    from types import SimpleNamespace

    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("first")
    ca.write_text("not checked here")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    configuration = k8s_client.configuration()
    assert bearer(configuration).lower() == "bearer first"
    token.write_text("second")  # the kubelet rotates a projected token in place

    class Later(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return real_datetime.datetime.now(tz) + real_datetime.timedelta(minutes=2)
    monkeypatch.setattr(incluster_config, "datetime", SimpleNamespace(datetime=Later,
                                                                      timedelta=real_datetime.timedelta))
    assert bearer(configuration).lower() == "bearer second"
