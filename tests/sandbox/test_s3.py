"""The sandbox's object storage: SeaweedFS with credentials, reached through the minio client."""

from __future__ import annotations

import io
import json

import pytest
from minio import Minio
from minio.error import S3Error

from kadence.sandbox import s3

pytestmark = pytest.mark.sandbox


def test_the_storage_secret_lets_the_minio_client_write_and_read(sandbox_s3):
    data = sandbox_s3.secret_data()
    client = Minio(data["endpoint"], access_key=data["accessKey"], secret_key=data["secretKey"],
                   secure=data["secure"] == "true")
    assert client.bucket_exists(data["bucket"])
    # A prefix of its own: other tests of the session write to the same bucket.
    client.put_object(data["bucket"], "test-s3/models/m.bin", io.BytesIO(b"weights"), 7)
    assert client.get_object(data["bucket"], "test-s3/models/m.bin").read() == b"weights"
    assert [o.object_name for o in client.list_objects(data["bucket"], prefix="test-s3/models/",
                                                       recursive=True)] == ["test-s3/models/m.bin"]


def test_a_wrong_secret_key_is_refused(sandbox_s3):
    client = Minio(sandbox_s3.endpoint, access_key=sandbox_s3.access_key, secret_key="not-the-secret",
                   secure=False)
    with pytest.raises(S3Error) as refused:
        client.put_object(sandbox_s3.bucket, "x", io.BytesIO(b"x"), 1)
    assert refused.value.code == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(sandbox_s3):
    client = Minio(sandbox_s3.endpoint, access_key="nobody", secret_key=sandbox_s3.secret_key, secure=False)
    with pytest.raises(S3Error) as refused:
        client.list_objects(sandbox_s3.bucket).__next__()
    assert refused.value.code == "InvalidAccessKeyId"


def test_settings_keep_their_keys_and_ports_across_restarts(tmp_path):
    first = s3.load_or_create_settings(tmp_path)
    again = s3.load_or_create_settings(tmp_path)
    assert again == first
    assert len({*first.ports(), *(p + s3.GRPC_PORT_OFFSET for p in first.ports())}) == 8, \
        "four ports and their gRPC partners, all distinct"
    assert json.loads((tmp_path / "s3" / "settings.json").read_text())["secret_key"] == first.secret_key


def test_the_secret_manifest_carries_every_key_workloads_read(tmp_path):
    settings = s3.load_or_create_settings(tmp_path)
    manifest = s3.secret_manifest(settings, "kadence-system")
    assert manifest["metadata"] == {"name": "kadence-storage", "namespace": "kadence-system",
                                    "labels": {"app.kubernetes.io/part-of": "kadence-sandbox"}}
    assert sorted(manifest["data"]) == ["accessKey", "bucket", "endpoint", "secretKey", "secure"]
    assert settings.env()["KADENCE_S3_ENDPOINT"] == settings.endpoint
