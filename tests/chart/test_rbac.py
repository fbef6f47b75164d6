"""Least privilege: the operator gets exactly the verbs it uses, scoped as narrowly as the
watch mode allows; workloads get an identity with no rights and no token."""

from __future__ import annotations

from .helm import objects, render
from .test_render import by_kind, one

KADENCE_KINDS = ["datasets", "featuresets", "trainingruns", "modelversions", "inferenceservices", "monitorpolicies",
                 "batchpredictions", "erasurerequests"]


def rules_of(rendered, kind: str, name: str) -> list[dict]:
    return one(rendered, kind, name)["rules"]


def grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_no_rule_uses_a_wildcard_or_escalating_verbs(full_render, default_render):
    for rendered in (full_render, default_render):
        for role in by_kind(rendered, "ClusterRole") + by_kind(rendered, "Role"):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], (role["metadata"]["name"], rule)
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_all_namespaces_mode_binds_the_object_rules_cluster_wide(default_render):
    granted = grants(rules_of(default_render, "ClusterRole", "kadence-operator"))
    for plural in KADENCE_KINDS:
        assert {("kadence.dev", plural, v) for v in ("get", "list", "watch", "patch")} <= granted
        assert ("kadence.dev", f"{plural}/status", "patch") in granted
        assert ("kadence.dev", plural, "delete") not in granted, "users delete their objects, not the operator"
    assert {("kadence.dev", p, "create") for p in KADENCE_KINDS} & granted == {
        ("kadence.dev", "trainingruns", "create"), ("kadence.dev", "modelversions", "create")}
    for group, plural in [("batch", "jobs"), ("apps", "deployments"), ("", "services"), ("", "configmaps"),
                          ("autoscaling", "horizontalpodautoscalers"), ("gateway.networking.k8s.io", "httproutes")]:
        assert {(group, plural, v) for v in ("get", "list", "watch", "create", "patch", "delete")} <= granted
    assert ("", "pods/log", "get") in granted and ("", "pods", "delete") not in granted
    assert ("", "events", "create") in granted and ("events.k8s.io", "events", "create") in granted
    unnamed = grants([r for r in rules_of(default_render, "ClusterRole", "kadence-operator") if not r.get("resourceNames")])
    assert {g for g in unnamed if g[1] == "secrets"} == {("", "secrets", "create")}, \
        "Secrets: created (feedback tokens, tenant keys), never listed; read or changed only by name"
    binding = one(default_render, "ClusterRoleBinding", "kadence-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kadence", "namespace": "kadence-system"}]


def test_namespace_mode_uses_one_role_per_watched_namespace_and_no_cluster_wide_object_rights(full_render):
    assert [r["metadata"]["name"] for r in by_kind(full_render, "ClusterRole")] == ["kadence-discovery"]
    discovery = grants(rules_of(full_render, "ClusterRole", "kadence-discovery"))
    assert discovery == {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")} | {
        ("", "namespaces", v) for v in ("get", "list", "watch")}
    roles = {r["metadata"]["namespace"]: r for r in by_kind(full_render, "Role") if r["metadata"]["name"] == "kadence-operator"}
    assert sorted(roles) == ["ml-team-a", "ml-team-b"]
    bindings = {b["metadata"]["namespace"] for b in by_kind(full_render, "RoleBinding") if b["metadata"]["name"] == "kadence-operator"}
    assert bindings == {"ml-team-a", "ml-team-b"}
    assert not [r for r in roles["ml-team-a"]["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]


def test_several_replicas_may_create_leases_and_read_and_update_only_their_own_in_the_release_namespace(full_render):
    role = one(full_render, "Role", "kadence-leader-election")
    assert role["metadata"]["namespace"] == "kadence-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["kadence"],
         "verbs": ["get", "update"]},
    ]
    binding = one(full_render, "RoleBinding", "kadence-leader-election")
    assert binding["roleRef"]["name"] == "kadence-leader-election"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kadence", "namespace": "kadence-system"}]


def test_the_storage_secret_is_readable_by_name_only_in_the_release_namespace(external_storage_render, default_render):
    role = one(external_storage_render, "Role", "kadence-storage")
    assert role["metadata"]["namespace"] == "kadence-system"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kadence-s3"], "verbs": ["get"]}]
    assert [r for r in by_kind(default_render, "Role") if r["metadata"]["name"] == "kadence-storage"] == []


def test_workloads_get_a_service_account_without_token_or_any_binding(full_render, default_render):
    for rendered in (full_render, default_render):
        accounts = [a for a in by_kind(rendered, "ServiceAccount") if a["metadata"]["name"] == "kadence-workloads"]
        assert accounts and all(a["automountServiceAccountToken"] is False for a in accounts)
        bound = {s["name"] for kind in ("RoleBinding", "ClusterRoleBinding") for b in by_kind(rendered, kind)
                 for s in b["subjects"]}
        assert bound - {"kadence-console"} == {"kadence"}  # the console's own ServiceAccount (console.enabled)
    assert sorted(a["metadata"]["namespace"] for a in by_kind(full_render, "ServiceAccount")
                  if a["metadata"]["name"] == "kadence-workloads") == ["ml-team-a", "ml-team-b"]


def test_the_operator_token_is_mounted_only_into_the_operator_pod(default_render):
    account = one(default_render, "ServiceAccount", "kadence")
    assert account["automountServiceAccountToken"] is False
    pod = one(default_render, "Deployment", "kadence-operator")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == "kadence"


def test_rbac_can_be_left_to_the_platform_team():
    rendered = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ml-operator"}})
    kinds = {o["kind"] for o in objects(rendered)}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert one(rendered, "Deployment", "kadence-operator")["spec"]["template"]["spec"]["serviceAccountName"] == "ml-operator"
