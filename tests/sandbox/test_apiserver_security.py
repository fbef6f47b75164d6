"""The locked sandbox API server: loopback Hosts, the kubeconfig's bearer token, Kubernetes media
types only, owner-only files, and snapshots that survive a crash mid-write."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tempfile

import httpx
import orjson
import pytest
import yaml

from kadence.sandbox import tls
from kadence.sandbox.apiserver import persistence, security
from kadence.sandbox.apiserver.store import Store
from kadence.sandbox.kubeconfig import kubeconfig_path

from .conftest import BIN

# ---- the rules, as tables -------------------------------------------------------------------


@pytest.mark.parametrize("host, port, allowed", [
    ("127.0.0.1:6443", 6443, True),
    ("localhost:6443", 6443, True),
    ("LOCALHOST:6443", 6443, True),
    ("[::1]:6443", 6443, True),
    ("127.0.0.1", 6443, True),
    ("127.0.0.1:8080", 6443, False),
    ("evil.example:6443", 6443, False),
    ("127.0.0.1.nip.io:6443", 6443, False),
    ("localhost.evil.example", 6443, False),
    ("10.0.0.5:6443", 6443, False),
    ("0.0.0.0:6443", 6443, False),
    ("::1", 6443, False),
    ("[::1", 6443, False),
    ("127.0.0.1:http", 6443, False),
    ("", 6443, False),
    (None, 6443, False),
])
def test_only_a_loopback_host_with_the_servers_own_port_is_addressed_to_the_sandbox(host, port, allowed):
    assert security.is_loopback_host(host, port) is allowed


@pytest.mark.parametrize("header, token", [
    ("Bearer s3cret", "s3cret"),
    ("bearer s3cret", "s3cret"),
    ("Bearer   s3cret ", "s3cret"),
    ("Basic czNjcmV0", None),
    ("Bearer", None),
    ("Bearer ", None),
    ("", None),
    (None, None),
])
def test_the_bearer_token_is_read_from_the_authorization_header(header, token):
    assert security.bearer_token(header) == token


@pytest.mark.parametrize("content_type, allowed", [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    ("application/yaml", True),
    ("application/vnd.kubernetes.protobuf", True),
    ("application/merge-patch+json", True),
    ("application/json-patch+json", True),
    ("application/strategic-merge-patch+json", True),
    ("application/apply-patch+yaml", True),
    ("text/plain", False),
    ("text/plain; charset=utf-8", False),
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False),
    ("application/octet-stream", False),
    ("", True),  # read as JSON, as upstream does: the kubernetes Python client sends none
    (None, True),
])
def test_a_body_is_accepted_only_in_the_media_types_kubernetes_clients_send(content_type, allowed):
    assert security.body_type_allowed(content_type) is allowed


# ---- through the real HTTP port -------------------------------------------------------------

def _status(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    return response.status_code, body["reason"], body["code"]


def test_a_request_without_the_token_or_with_another_is_refused_with_401_and_a_status(sandbox_apiserver):
    with httpx.Client(base_url=sandbox_apiserver.url, timeout=10,
                      verify=tls.client_context(sandbox_apiserver.state_dir)) as anonymous:
        assert _status(anonymous.get("/api/v1/namespaces")) == (401, "Unauthorized", 401)
        assert _status(anonymous.get("/version")) == (401, "Unauthorized", 401)
        assert _status(anonymous.post("/api/v1/namespaces/default/pods", json={
            "metadata": {"name": "intruder"},
            "spec": {"containers": [{"name": "c", "image": "x", "command": ["touch", "/tmp/owned"]}]}},
        )) == (401, "Unauthorized", 401)
        wrong = {"Authorization": "Bearer " + "x" * len(sandbox_apiserver.token)}
        assert _status(anonymous.get("/api/v1/namespaces", headers=wrong)) == (401, "Unauthorized", 401)
        assert anonymous.get("/readyz").status_code == 200, "probes answer without the token"
    with sandbox_apiserver.client() as client:
        assert client.get("/api/v1/namespaces/default/pods/intruder").status_code == 404
        assert client.get("/version").status_code == 200


def test_a_request_addressed_to_another_host_is_refused_even_with_the_token(sandbox_apiserver):
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 still sends its own Host."""
    with sandbox_apiserver.client() as client:
        for host in (f"evil.example:{sandbox_apiserver.port}", f"127.0.0.1.nip.io:{sandbox_apiserver.port}"):
            response = client.get("/api/v1/namespaces", headers={"Host": host})
            assert _status(response) == (421, "Misdirected", 421)
        for host in (f"localhost:{sandbox_apiserver.port}", f"127.0.0.1:{sandbox_apiserver.port}"):
            assert client.get("/api/v1/namespaces", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_a_body_of_another_media_type_is_refused_with_415(sandbox_apiserver, content_type):
    body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}})
    headers = {"Content-Type": content_type} if content_type else {}
    with sandbox_apiserver.client() as client:
        request = client.build_request("POST", "/api/v1/namespaces/default/configmaps", content=body, headers=headers)
        assert request.headers.get("Content-Type") == content_type
        assert _status(client.send(request)) == (415, "UnsupportedMediaType", 415)
        assert client.get("/api/v1/namespaces/default/configmaps/plain").status_code == 404
        yaml_body = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}})
        created = client.post("/api/v1/namespaces/default/configmaps", content=yaml_body,
                              headers={"Content-Type": "application/yaml"})
        assert created.status_code == 201, created.text
        client.delete("/api/v1/namespaces/default/configmaps/plain")


def test_kubectl_with_the_kubeconfig_gets_in_and_with_another_token_is_refused(sandbox_kubeconfig, kubectl,
                                                                              tmp_path):
    assert "default" in kubectl("get", "namespaces", "-o", "name").stdout
    config = yaml.safe_load(sandbox_kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "guessed-" + "0" * 35}  # (with none at all, kubectl asks for a password)
    tokenless = tmp_path / "kubeconfig"
    tokenless.write_text(yaml.safe_dump(config))
    cache = tempfile.mkdtemp(dir=tmp_path)
    refused = subprocess.run([str(BIN / "kubectl"), "get", "namespaces"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "KUBECONFIG": str(tokenless), "KUBECACHEDIR": cache})
    shutil.rmtree(cache, ignore_errors=True)
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr or "logged in" in refused.stderr, refused.stderr


def test_the_token_kubeconfig_and_snapshot_are_readable_by_their_owner_only(sandbox_apiserver, sandbox_kubeconfig):
    from .apiserver_helpers import wait_for

    state = sandbox_apiserver.state_dir
    wait_for(lambda: persistence.snapshot_path(state).exists(), "the first snapshot", timeout=30)
    for path in (state / "token", kubeconfig_path(state), persistence.snapshot_path(state)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    config = yaml.safe_load(sandbox_kubeconfig.read_text())
    assert config["users"][0]["user"]["token"] == sandbox_apiserver.token


def test_the_api_server_refuses_to_listen_beyond_loopback(tmp_path):
    from kadence.sandbox.supervisor import free_port

    done = subprocess.run([str(BIN / "python"), "-m", "kadence.sandbox.apiserver", "--host", "0.0.0.0",
                           "--port", str(free_port()), "--state-dir", str(tmp_path),
                           "--token-file", str(tmp_path / "token")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "loopback only" in done.stderr


# ---- snapshots ------------------------------------------------------------------------------

def _store(*names: str, resource_version: int | None = None) -> Store:
    store = Store()
    for name in names:
        store.put(("", "configmaps"), {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": name, "namespace": "default"}})
    if resource_version is not None:
        store.resource_version = resource_version
    return store


def _names(store: Store) -> list[str]:
    return [o["metadata"]["name"] for o in store.list(("", "configmaps"))]


def test_a_snapshot_is_written_owner_only_and_the_one_it_replaces_is_kept(tmp_path):
    persistence.save(_store("a"), tmp_path)
    persistence.save(_store("a", "b"), tmp_path)
    newest, previous = persistence.snapshot_path(tmp_path), persistence.previous_path(tmp_path)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (newest, previous)] == [0o600, 0o600]
    assert len(orjson.loads(newest.read_bytes())["objects"]) == 2
    assert len(orjson.loads(previous.read_bytes())["objects"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [newest.name, previous.name], "no temporary file is left"


@pytest.mark.parametrize("damage", [
    lambda data: data[: len(data) // 2],  # torn: the tail never reached the disk
    lambda data: b"",
    lambda data: b'{"format": 99, "resourceVersion": 1, "objects": []}',
    lambda data: b'{"format": 1, "objects": [{"group": ""}]}',
])
def test_a_torn_or_corrupt_newest_snapshot_falls_back_to_the_previous_with_a_log_line(tmp_path, caplog, damage):
    persistence.save(_store("a"), tmp_path)
    persistence.save(_store("a", "b"), tmp_path)
    newest = persistence.snapshot_path(tmp_path)
    newest.write_bytes(damage(newest.read_bytes()))
    restored = Store()
    with caplog.at_level(logging.WARNING, logger=persistence.__name__):
        assert persistence.load(restored, tmp_path)
    assert _names(restored) == ["a"]
    assert "previous snapshot" in caplog.text and str(newest) in caplog.text


def test_with_no_usable_snapshot_the_server_refuses_to_start_over_empty(tmp_path):
    persistence.save(_store("a"), tmp_path)
    persistence.save(_store("a", "b"), tmp_path)
    for path in (persistence.snapshot_path(tmp_path), persistence.previous_path(tmp_path)):
        path.write_bytes(b"{")
    with pytest.raises(persistence.SnapshotError, match="no usable API server snapshot"):
        persistence.load(Store(), tmp_path)


def test_temporary_files_of_a_write_cut_short_are_removed_at_start(tmp_path):
    persistence.save(_store("a"), tmp_path)
    stale = tmp_path / f".{persistence.SNAPSHOT_NAME}.abc123.tmp"
    stale.write_bytes(b'{"format": 1, "resourceVersion"')
    assert persistence.load(Store(), tmp_path)
    assert not stale.exists()


def test_after_a_crash_resource_versions_continue_above_every_one_handed_out(tmp_path):
    store = _store()
    reservation = persistence.Reservation(tmp_path, block=100)
    store.reserve = reservation.ensure
    for index in range(5):
        store.put(("", "configmaps"), {"metadata": {"name": f"c{index}", "namespace": "default"}})
    persistence.save(store, tmp_path)  # a periodic snapshot at resourceVersion 5 ...
    for index in range(5, 150):  # ... then writes the crash loses, up to 150
        store.put(("", "configmaps"), {"metadata": {"name": f"c{index}", "namespace": "default"}})
    restored = Store()
    assert persistence.load(restored, tmp_path)
    assert len(_names(restored)) == 5
    assert restored.resource_version >= 150
    assert restored.oldest_watchable_version() >= 150, "a watch from before the crash gets 410 and relists"


def test_after_a_clean_stop_the_resource_version_is_the_snapshots(tmp_path):
    store = _store("a", "b")
    store.reserve = persistence.Reservation(tmp_path, block=100).ensure
    store.put(("", "configmaps"), {"metadata": {"name": "c", "namespace": "default"}})
    persistence.save(store, tmp_path, clean=True)
    restored = Store()
    assert persistence.load(restored, tmp_path)
    assert restored.resource_version == store.resource_version == 3


def test_without_hard_links_the_previous_snapshot_is_kept_as_a_copy(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise PermissionError("hard links are not supported here")

    persistence.save(_store("a"), tmp_path)
    monkeypatch.setattr(os, "link", no_links)
    persistence.save(_store("a", "b"), tmp_path)
    previous = orjson.loads(persistence.previous_path(tmp_path).read_bytes())
    assert [o["object"]["metadata"]["name"] for o in previous["objects"]] == ["a"]
    assert stat.S_IMODE(persistence.previous_path(tmp_path).stat().st_mode) == 0o600
