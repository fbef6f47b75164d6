"""The chart's console: off by default; read-only rights unless enableWrites; the same scope as
the operator (cluster-wide, or a RoleBinding per watched namespace)."""

from __future__ import annotations

import pytest

pytest.importorskip("helm_python")

from tests.chart.helm import objects, render  # noqa: E402


def console_objects(values: dict) -> dict[tuple[str, str | None], dict]:
    return {(o["kind"], o["metadata"].get("namespace")): o for o in objects(render(values))
            if o["metadata"]["name"] == "kadence-console"}


def rules(found: dict) -> list[tuple[tuple, tuple, tuple]]:
    return [(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"]))
            for r in (found.get(("ClusterRole", None)) or found[("Role", "a")])["rules"]]


def args(found: dict) -> list[str]:
    return found[("Deployment", "kadence-system")]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_console_is_not_deployed_by_default():
    assert console_objects({}) == {}


def test_the_console_reads_every_namespace_and_writes_nothing_by_default():
    found = console_objects({"console": {"enabled": True}})
    assert rules(found) == [
        (("kadence.dev",), ("datasets", "featuresets", "trainingruns", "modelversions", "inferenceservices",
                            "monitorpolicies"), ("get", "list", "watch")),
        (("",), ("secrets",), ("get",))]
    assert found[("ClusterRole", None)]["rules"][1]["resourceNames"] == ["kadence-tenant-storage"]
    assert ("ClusterRoleBinding", None) in found
    assert args(found) == ["console", "--address=0.0.0.0", "--port=8990", "--no-browser", "--all-namespaces"]
    assert found[("ServiceAccount", "kadence-system")]["automountServiceAccountToken"] is False
    assert found[("Service", "kadence-system")]["spec"]["type"] == "ClusterIP"


def test_writes_add_only_the_patches_and_events_the_actions_make():
    found = console_objects({"console": {"enabled": True, "enableWrites": True}})
    assert rules(found)[2:] == [(("kadence.dev",), ("modelversions", "inferenceservices", "monitorpolicies"), ("patch",)),
                                (("",), ("events",), ("create",))]
    assert args(found)[-1] == "--enable-writes"


def test_watched_namespaces_get_a_role_each_and_the_console_watches_only_them():
    found = console_objects({"console": {"enabled": True}, "watch": {"namespaces": ["a", "b", "a"]}})
    assert {ns for kind, ns in found if kind == "RoleBinding"} == {ns for kind, ns in found if kind == "Role"} == {"a", "b"}
    assert ("ClusterRoleBinding", None) not in found and ("ClusterRole", None) not in found
    assert rules(found) == rules(console_objects({"console": {"enabled": True}}))
    assert args(found)[-2:] == ["--namespace=a", "--namespace=b"]


def test_the_network_policy_admits_only_the_consoles_port_from_the_peers_given():
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]
    policy = console_objects({"console": {"enabled": True, "allowedFrom": peers}})[("NetworkPolicy", "kadence-system")]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": peers}]
    assert ("NetworkPolicy", "kadence-system") not in console_objects(
        {"console": {"enabled": True}, "networkPolicy": {"enabled": False}})
