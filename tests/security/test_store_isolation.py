"""The store itself keeps namespaces apart: identities provisioned through SeaweedFS's admin
shell, exactly as the operator does in the sandbox, and what each may do (403 otherwise)."""

from __future__ import annotations

import io
import time

import pytest
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from kadence.storage import ObjectStore, StorageConfig
from kadence.tenancy import SeaweedShell, TenantPolicy, derive_credentials, find_weed


@pytest.fixture(scope="module")
def tenants(s3_settings):
    admin = s3_settings.storage_config()
    shell = SeaweedShell(master=f"{s3_settings.host}:{s3_settings.master_port}",
                         filer=f"{s3_settings.host}:{s3_settings.filer_port}", weed=find_weed())
    stores = {}
    for namespace in ("iso-a", "iso-b"):
        credentials = derive_credentials(admin, namespace)
        shell.ensure(credentials, TenantPolicy(namespace=namespace, bucket=admin.bucket))
        stores[namespace] = ObjectStore(StorageConfig(endpoint=admin.endpoint, access_key=credentials.access_key,
                                                      secret_key=credentials.secret_key, bucket=admin.bucket))
    deadline = time.monotonic() + 30  # the gateway reloads identities from the filer within about a second
    while True:
        try:
            stores["iso-a"].put_bytes("datasets/iso-a/ready", b"1")
            break
        except S3Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    return shell, ObjectStore(admin), stores


def denied(call) -> str:
    with pytest.raises(S3Error) as error:
        call()
    assert error.value.response.status == 403
    return error.value.code


def test_a_namespaces_identity_reads_writes_lists_and_deletes_its_own_prefixes(tenants):
    _, _, stores = tenants
    a = stores["iso-a"]
    for root in ("datasets", "features", "runs", "monitoring", "predictions", "feedback"):
        key = f"{root}/iso-a/x/obj.json"
        a.put_bytes(key, b"mine")
        assert a.get_bytes(key) == b"mine"
        assert key in list(a.list_keys(f"{root}/iso-a/"))
    assert a.delete_prefix("features/iso-a/x/") == 1


def test_the_store_answers_403_to_one_namespace_reaching_for_anothers_objects(tenants):
    _, admin, stores = tenants
    admin.put_bytes("runs/iso-b/train-1/result.json", b'{"b": true}')
    a = stores["iso-a"]
    assert denied(lambda: a.get_bytes("runs/iso-b/train-1/result.json")) == "AccessDenied"
    assert denied(lambda: a.put_bytes("runs/iso-b/train-1/result.json", b'{"forged": true}')) == "AccessDenied"
    assert denied(lambda: list(a.list_keys("runs/iso-b/"))) == "AccessDenied"
    assert denied(lambda: list(a.list_keys(""))) == "AccessDenied"
    assert denied(lambda: a.client.remove_object(a.bucket, "runs/iso-b/train-1/result.json")) == "AccessDenied"
    assert denied(lambda: a.put_bytes("elsewhere/iso-a/x", b"x")) == "AccessDenied"  # not a tenant root
    assert denied(lambda: a.client.make_bucket("iso-a-own-bucket")) == "AccessDenied"
    errors = list(a.client.remove_objects(a.bucket, [DeleteObject("runs/iso-b/train-1/result.json")]))
    assert [e.code for e in errors] == ["AccessDenied"]
    assert admin.get_bytes("runs/iso-b/train-1/result.json") == b'{"b": true}'  # untouched


def test_what_a_workload_writes_carries_its_owner(tenants, monkeypatch):
    _, admin, stores = tenants
    monkeypatch.setenv("KADENCE_OWNER_UID", "uid-123")
    monkeypatch.setenv("KADENCE_OWNER_KIND", "TrainingRun")
    a = ObjectStore(stores["iso-a"].config)  # built inside the Job: reads $KADENCE_OWNER_*
    a.put_bytes("runs/iso-a/train-1/result.json", b"{}")
    stored = admin.get_object("runs/iso-a/train-1/result.json")
    assert stored.owner_uid == "uid-123" and stored.owner() == {"uid": "uid-123", "kind": "TrainingRun"}


def test_a_granted_prefix_is_readable_but_not_writable_and_a_withdrawn_grant_is_gone(tenants):
    shell, admin, stores = tenants
    admin.put_bytes("datasets/iso-b/shared/v1/data.parquet", b"shared")
    credentials = derive_credentials(admin.config, "iso-a")
    granted = TenantPolicy(namespace="iso-a", bucket=admin.bucket, granted=("datasets/iso-b/shared/",))
    assert shell.ensure(credentials, granted)
    assert not shell.ensure(credentials, granted)  # already so: no command run
    a = stores["iso-a"]
    deadline = time.monotonic() + 30
    while True:
        try:
            assert a.get_bytes("datasets/iso-b/shared/v1/data.parquet") == b"shared"
            break
        except S3Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    assert denied(lambda: a.put_bytes("datasets/iso-b/shared/v1/data.parquet", b"x")) == "AccessDenied"
    assert denied(lambda: a.get_bytes("datasets/iso-b/private/x")) == "AccessDenied"
    shell.ensure(credentials, TenantPolicy(namespace="iso-a", bucket=admin.bucket))
    deadline = time.monotonic() + 30
    while True:
        try:
            a.get_bytes("datasets/iso-b/shared/v1/data.parquet")
        except S3Error as error:
            assert error.response.status == 403
            break
        assert time.monotonic() < deadline, "the withdrawn grant still reads"
        time.sleep(0.3)
