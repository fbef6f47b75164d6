"""Discovery documents: /api, /apis, group and group-version resource lists, /version."""

from __future__ import annotations

import platform
from typing import Any

from .resources import Registry, ResourceType, version_priority

KUBERNETES_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0"}

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
}


def version_info() -> dict[str, Any]:
    return {
        **KUBERNETES_VERSION,
        "gitCommit": "kadence-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": f"linux/{'amd64' if platform.machine() in ('x86_64', 'AMD64') else 'arm64'}",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    ordered = sorted(versions, key=version_priority)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [
        _group_entry(group, versions)
        for group, versions in registry.group_versions().items()
        if group
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not versions or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(name, versions)}


def _resource_entries(rtype: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    entries = [main]
    for sub in rtype.subresources:
        entry = {
            "name": f"{rtype.plural}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": _SUBRESOURCE_VERBS[sub],
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        if sub == "log":
            entry["kind"] = "Pod"
        entries.append(entry)
    if rtype.key == ("", "namespaces"):
        entries.append({"name": "namespaces/finalize", "singularName": "", "namespaced": False,
                        "kind": "Namespace", "verbs": ["update"]})
    return entries


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group, version)
    if not types:
        return None
    resources = []
    for rtype in sorted(types, key=lambda t: t.plural):
        resources.extend(_resource_entries(rtype))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# ---- aggregated discovery (apidiscovery.k8s.io/v2): every group in one document -------------

AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether an Accept header asks for the v2 aggregated discovery document."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if (params.get("g"), params.get("v"), params.get("as")) == \
                ("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList"):
            return True
    return False


def _aggregated_resource(rtype: ResourceType) -> dict[str, Any]:
    kind = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": kind,
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    subresources = []
    for sub in rtype.subresources:
        response_kind = kind
        if sub == "scale":
            response_kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        subresources.append({"subresource": sub, "responseKind": response_kind,
                             "verbs": _SUBRESOURCE_VERBS[sub]})
    if rtype.key == ("", "namespaces"):
        subresources.append({"subresource": "finalize", "responseKind": kind,
                             "verbs": ["update"]})
    if subresources:
        entry["subresources"] = subresources
    return entry


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """The /api (core=True) or /apis document in the aggregated form."""
    items = []
    for group_name, versions in registry.group_versions().items():
        if (group_name == "") != core:
            continue
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group_name:
            metadata["name"] = group_name
        items.append({"metadata": metadata, "versions": [
            {"version": version, "freshness": "Current", "resources": [
                _aggregated_resource(t) for t in sorted(registry.types_in(group_name, version),
                                                        key=lambda t: t.plural)]}
            for version in sorted(versions, key=version_priority)]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}
