"""Tenant isolation in object storage: prefixes, policies, credentials, provisioning (pure)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from kadence import tenancy
from kadence.storage import TENANT_ROOTS, TENANT_SECRET, StorageConfig, key_in_namespace, owner_metadata, \
    tenant_prefixes

ADMIN = StorageConfig(endpoint="s3.example:9000", access_key="root", secret_key="root-secret-0123456789",
                      bucket="kadence")


def every_key_function(namespace: str) -> dict[str, str]:
    from kadence.domain.monitoring.logformat import feedback_prefix, predictions_prefix
    from kadence.workloads.data_tasks import dataset_prefix, features_prefix, ingest_result_key, \
        materialize_result_key
    from kadence.workloads.monitor_task import evaluation_prefix, monitoring_prefix
    from kadence.workloads.train_task import progress_key, result_key, run_prefix

    moment = datetime(2026, 1, 2, tzinfo=timezone.utc)
    return {
        "dataset_prefix": dataset_prefix(namespace, "churn", "v1"),
        "features_prefix": features_prefix(namespace, "churn", "v1"),
        "ingest_result_key": ingest_result_key(namespace, "churn", "run-1"),
        "materialize_result_key": materialize_result_key(namespace, "churn", "run-1"),
        "run_prefix": run_prefix(namespace, "train-1"),
        "result_key": result_key(namespace, "train-1"),
        "progress_key": progress_key(namespace, "train-1"),
        "monitoring_prefix": monitoring_prefix(namespace, "watch"),
        "evaluation_prefix": evaluation_prefix(namespace, "watch", moment),
        "predictions_prefix": predictions_prefix(namespace, "churn"),
        "feedback_prefix": feedback_prefix(namespace, "churn"),
    }


@pytest.mark.parametrize("function", sorted(every_key_function("team-a")))
def test_every_key_a_workload_writes_lies_under_its_namespaces_prefixes_and_no_other(function):
    key = every_key_function("team-a")[function]
    assert key_in_namespace(key, "team-a"), f"{function} -> {key}: add its root to storage.TENANT_ROOTS"
    assert not key_in_namespace(key, "team-b")
    assert not key_in_namespace(key, "team")  # a namespace that is a prefix of another's name


def test_a_key_that_climbs_out_of_the_prefix_is_not_the_namespaces():
    assert not key_in_namespace("datasets/team-a/../team-b/x", "team-a")
    assert not key_in_namespace("datasets/team-a", "team-a")  # the prefix ends with "/"
    assert key_in_namespace("datasets/team-a/x", "team-a")


def test_tenant_prefixes_refuse_a_name_that_is_not_a_namespace():
    with pytest.raises(ValueError):
        tenant_prefixes("a/b")
    with pytest.raises(ValueError):
        tenant_prefixes("")


def test_the_seaweedfs_identity_may_read_write_and_list_only_its_own_prefixes_and_read_what_was_granted():
    policy = tenancy.TenantPolicy(namespace="team-a", bucket="kadence", granted=("datasets/team-b/shared/",))
    actions = policy.seaweed_actions()
    assert "Read:kadence/datasets/team-a/*" in actions and "Write:kadence/runs/team-a/*" in actions
    assert {a.split(":")[0] for a in actions if "team-b" in a} == {"Read", "List"}
    assert all(a.endswith("*") and ("/team-a/" in a or "/team-b/shared/" in a) for a in actions)
    assert len([a for a in actions if a.startswith("Write:")]) == len(TENANT_ROOTS)


def test_the_minio_policy_grants_objects_and_listing_only_under_the_namespaces_prefixes():
    policy = tenancy.TenantPolicy(namespace="team-a", bucket="ml").minio_policy()
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert "arn:aws:s3:::ml" in resources  # ListBucket, limited by the prefix condition below
    assert all(r == "arn:aws:s3:::ml" or r.startswith("arn:aws:s3:::ml/") and "/team-a/" in r for r in resources)
    listing = next(s for s in policy["Statement"] if s["Action"] == ["s3:ListBucket"])
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [f"{p}*" for p in tenant_prefixes("team-a")]
    assert not any("s3:*" in s["Action"] for s in policy["Statement"])


def test_tenant_keys_are_stable_distinct_per_namespace_and_never_the_admins():
    a1, a2 = tenancy.derive_credentials(ADMIN, "team-a"), tenancy.derive_credentials(ADMIN, "team-a")
    b = tenancy.derive_credentials(ADMIN, "team-b")
    assert a1 == a2 and a1.access_key != b.access_key and a1.secret_key != b.secret_key
    assert len(a1.access_key) == 20 and a1.access_key.isalnum() and a1.secret_key.isalnum()
    assert ADMIN.secret_key not in (a1.secret_key, a1.access_key) and a1.identity == "kadence-ns-team-a"
    rotated = StorageConfig(**{**ADMIN.__dict__, "secret_key": "another-admin-secret"})
    assert tenancy.derive_credentials(rotated, "team-a").secret_key != a1.secret_key


CREDS = tenancy.TenantCredentials("kadence-ns-a", "kt0123", "s3cret")


@pytest.mark.parametrize("current, wanted, expected", [
    (None, ["Read:k/a*"], ["s3.configure -user=kadence-ns-a -access_key=kt0123 -secret_key=s3cret "
                           "-actions=Read:k/a* -apply"]),
    ({"credentials": [{"accessKey": "kt0123", "secretKey": "s3cret"}], "actions": ["Read:k/a*"]}, ["Read:k/a*"], []),
    ({"credentials": [{"accessKey": "kt0123", "secretKey": "s3cret"}], "actions": ["Read:k/a*", "Read:k/b*"]},
     ["Read:k/a*", "List:k/a*"],
     ["s3.configure -user=kadence-ns-a -actions=Read:k/b* -delete -apply",
      "s3.configure -user=kadence-ns-a -actions=List:k/a* -apply"]),
    ({"credentials": [{"accessKey": "old", "secretKey": "old"}], "actions": ["Read:k/a*"]}, ["Read:k/a*"],
     ["s3.configure -user=kadence-ns-a -delete -apply",
      "s3.configure -user=kadence-ns-a -access_key=kt0123 -secret_key=s3cret -actions=Read:k/a* -apply"]),
], ids=["a new identity is created", "an identity that matches is left alone",
        "extra actions are removed and missing ones added", "other keys are replaced by deleting the identity"])
def test_weed_shell_commands_turn_the_stored_identity_into_exactly_the_wanted_one(current, wanted, expected):
    assert tenancy.seaweed_commands(current, CREDS, wanted) == expected


def test_the_identities_weed_shell_prints_are_read_after_its_banner():
    output = 'connecting...\n> {\n "identities": [{"name": "kadence-ns-a", "actions": ["Read"]}]\n}\n> '
    assert tenancy.parse_shell_config(output) == {"kadence-ns-a": {"name": "kadence-ns-a", "actions": ["Read"]}}
    with pytest.raises(tenancy.TenancyError):
        tenancy.parse_shell_config("error: no filer")


class FakeProvisioner:
    def __init__(self):
        self.calls = []

    def ensure(self, credentials, policy):
        self.calls.append((credentials, policy))
        return True


def decoded(secret: dict) -> dict:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_a_namespace_gets_its_own_identity_and_a_secret_with_its_keys_once_per_cache_period():
    secrets, clock = [], [0.0]
    provisioner = FakeProvisioner()
    t = tenancy.Tenancy(mode="seaweedfs", admin=ADMIN, provisioner=provisioner, apply_secret=secrets.append,
                        clock=lambda: clock[0])
    t.ensure("team-a")
    t.ensure("team-a")
    assert len(provisioner.calls) == 1 and len(secrets) == 1
    secret = secrets[0]
    assert secret["metadata"]["name"] == TENANT_SECRET and secret["metadata"]["namespace"] == "team-a"
    data = decoded(secret)
    expected = tenancy.derive_credentials(ADMIN, "team-a")
    assert data == {"endpoint": "s3.example:9000", "accessKey": expected.access_key, "secretKey": expected.secret_key,
                    "bucket": "kadence", "secure": "false"}
    assert provisioner.calls[0][1] == tenancy.TenantPolicy("team-a", "kadence")
    clock[0] = tenancy.CACHE_SECONDS + 1  # a deleted Secret or identity comes back after the cache period
    t.ensure("team-a")
    assert len(provisioner.calls) == 2 and len(secrets) == 2


def test_in_shared_mode_the_secret_carries_the_operators_keys_and_nothing_is_provisioned():
    secrets = []
    tenancy.Tenancy(mode="shared", admin=ADMIN, provisioner=None, apply_secret=secrets.append).ensure("team-a")
    assert decoded(secrets[0])["accessKey"] == "root"


def test_the_tenancy_mode_comes_from_the_environment_and_a_wrong_one_is_named():
    env = ADMIN.as_env()
    assert tenancy.tenancy_from_env(lambda s: None, env).mode == "shared"
    with pytest.raises(tenancy.TenancyError, match="KADENCE_TENANCY must be one of"):
        tenancy.tenancy_from_env(lambda s: None, {**env, "KADENCE_TENANCY": "aws"})
    with pytest.raises(tenancy.TenancyError, match="KADENCE_SEAWEEDFS_MASTER"):
        tenancy.tenancy_from_env(lambda s: None, {**env, "KADENCE_TENANCY": "seaweedfs"})
    minio = tenancy.tenancy_from_env(lambda s: None, {**env, "KADENCE_TENANCY": "minio"})
    assert isinstance(minio.provisioner, tenancy.MinioAdminProvisioner)


def test_a_workloads_owner_comes_from_its_environment_as_object_metadata():
    env = {"KADENCE_OWNER_UID": "u-1", "KADENCE_OWNER_KIND": "Dataset", "KADENCE_OWNER_NAME": "churn",
           "KADENCE_OWNER_NAMESPACE": "team-a", "HOME": "/"}
    assert owner_metadata(env) == {"kadence-owner-uid": "u-1", "kadence-owner-kind": "Dataset",
                                   "kadence-owner-name": "churn", "kadence-owner-namespace": "team-a"}
    assert owner_metadata({}) == {}


class FakeMinioAdmin:
    def __init__(self, attached_already=False):
        self.calls, self.policies, self.attached_already = [], {}, attached_already

    def policy_add(self, name, policy_file=None):
        import json as _json
        from pathlib import Path as _Path

        self.policies[name] = _json.loads(_Path(policy_file).read_text())
        self.calls.append(("policy_add", name))

    def user_add(self, access_key, secret_key):
        self.calls.append(("user_add", access_key, secret_key))

    def attach_policy(self, policies, user=None):
        self.calls.append(("attach_policy", tuple(policies), user))
        if self.attached_already:
            raise RuntimeError("policy change is already in effect")


def test_minio_gets_a_policy_and_a_user_per_namespace_through_its_admin_api():
    admin = FakeMinioAdmin()
    credentials = tenancy.derive_credentials(ADMIN, "team-a")
    tenancy.MinioAdminProvisioner(ADMIN, client=admin).ensure(credentials, tenancy.TenantPolicy("team-a", "kadence"))
    assert admin.calls == [("policy_add", "kadence-ns-team-a"),
                           ("user_add", credentials.access_key, credentials.secret_key),
                           ("attach_policy", ("kadence-ns-team-a",), credentials.access_key)]
    assert admin.policies["kadence-ns-team-a"] == tenancy.TenantPolicy("team-a", "kadence").minio_policy()
    # run again (every cache period): MinIO's "already attached" is not an error
    again = FakeMinioAdmin(attached_already=True)
    tenancy.MinioAdminProvisioner(ADMIN, client=again).ensure(credentials, tenancy.TenantPolicy("team-a", "kadence"))
    assert [c[0] for c in again.calls] == ["policy_add", "user_add", "attach_policy"]
