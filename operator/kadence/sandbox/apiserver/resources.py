"""The registry of resource types the server serves: built-ins and CRD-defined ones."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    # How `metadata.generation` moves: "spec" (built-ins: bumped when .spec changes),
    # "non-metadata" (custom resources: bumped on any change outside metadata and status),
    # or None (no generation at all).
    generation: str | None = None
    builtin: bool = True
    # Propagation used when a DELETE names none (batch/v1 Jobs orphan by default, as upstream).
    default_propagation: str = "Background"
    # For custom resources: the served versions, their printer columns and the CRD name.
    crd_name: str | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: one store per (group, plural), whatever the version asked."""
        return (self.group, self.plural)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _builtin(
    group: str, version: str, plural: str, kind: str, namespaced: bool = True, *,
    short: Iterable[str] = (), categories: Iterable[str] = (), status: bool = False,
    generation: bool = False, extra_subresources: Iterable[str] = (), verbs=ALL_VERBS,
    default_propagation: str = "Background",
) -> ResourceType:
    subresources = (("status",) if status else ()) + tuple(extra_subresources)
    return ResourceType(
        group=group, version=version, plural=plural, singular=kind.lower(), kind=kind,
        namespaced=namespaced, short_names=tuple(short), categories=tuple(categories),
        verbs=tuple(verbs), subresources=subresources,
        generation="spec" if generation else None, builtin=True,
        default_propagation=default_propagation,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    # core/v1
    _builtin("", "v1", "namespaces", "Namespace", False, short=["ns"], status=True,
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _builtin("", "v1", "pods", "Pod", short=["po"], categories=["all"], status=True,
             generation=True, extra_subresources=["log"]),
    _builtin("", "v1", "services", "Service", short=["svc"], categories=["all"], status=True,
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update",
                    "watch")),
    _builtin("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "events", "Event", short=["ev"]),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"]),
    _builtin("", "v1", "endpoints", "Endpoints", short=["ep"]),
    _builtin("", "v1", "nodes", "Node", False, short=["no"], status=True),
    _builtin("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=["pvc"],
             status=True),
    _builtin("", "v1", "resourcequotas", "ResourceQuota", short=["quota"], status=True),
    _builtin("", "v1", "limitranges", "LimitRange", short=["limits"]),
    # events.k8s.io/v1 (stored apart from core events in this sandbox)
    _builtin("events.k8s.io", "v1", "events", "Event", short=["ev"]),
    # batch/v1
    _builtin("batch", "v1", "jobs", "Job", categories=["all"], status=True, generation=True,
             default_propagation="Orphan"),
    _builtin("batch", "v1", "cronjobs", "CronJob", short=["cj"], categories=["all"],
             status=True, generation=True),
    # apps/v1
    _builtin("apps", "v1", "deployments", "Deployment", short=["deploy"], categories=["all"],
             status=True, generation=True, extra_subresources=["scale"]),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", short=["rs"], categories=["all"],
             status=True, generation=True, extra_subresources=["scale"]),
    _builtin("apps", "v1", "statefulsets", "StatefulSet", short=["sts"], categories=["all"],
             status=True, generation=True, extra_subresources=["scale"]),
    _builtin("apps", "v1", "daemonsets", "DaemonSet", short=["ds"], categories=["all"],
             status=True, generation=True),
    # autoscaling/v2
    _builtin("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
             short=["hpa"], categories=["all"], status=True),
    # coordination.k8s.io/v1
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    # discovery.k8s.io/v1
    _builtin("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    # networking.k8s.io/v1
    _builtin("networking.k8s.io", "v1", "ingresses", "Ingress", short=["ing"], status=True,
             generation=True),
    _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
             short=["netpol"], generation=True),
    # policy/v1
    _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"],
             status=True, generation=True),
    # rbac.authorization.k8s.io/v1 (stored, not enforced)
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False),
    # authorization.k8s.io/v1: reviews are answered, never stored (the sandbox allows all)
    _builtin("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
             "SelfSubjectAccessReview", False, verbs=("create",)),
    _builtin("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview",
             False, verbs=("create",)),
    # authentication.k8s.io/v1: `kubectl auth whoami` (answered, never stored)
    _builtin("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False,
             verbs=("create",)),
    # apiextensions.k8s.io/v1
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
             "CustomResourceDefinition", False, short=["crd", "crds"], status=True,
             generation=True),
)

REVIEW_KEYS = {("authorization.k8s.io", "selfsubjectaccessreviews"),
               ("authorization.k8s.io", "selfsubjectrulesreviews"),
               ("authentication.k8s.io", "selfsubjectreviews")}

CRD_TYPE = next(t for t in BUILTIN_TYPES if t.plural == "customresourcedefinitions")
NAMESPACE_TYPE = next(t for t in BUILTIN_TYPES if t.plural == "namespaces")
POD_TYPE = next(t for t in BUILTIN_TYPES if t.plural == "pods" and t.group == "")


def served_types_of_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of an (established) CRD."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        types.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(), kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=(("status",) if "status" in subresources else ())
            + (("scale",) if "scale" in subresources else ()),
            generation="non-metadata", builtin=False,
            crd_name=crd["metadata"]["name"],
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
        ))
    return types


def storage_version_of_crd(crd: dict[str, Any]) -> str:
    for version in crd.get("spec", {}).get("versions", []):
        if version.get("storage"):
            return version["name"]
    return crd["spec"]["versions"][0]["name"]


class Registry:
    """Resource types by group/version/plural, kept in step with the stored CRDs."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        for rtype in BUILTIN_TYPES:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions (core group as '')."""
        result: dict[str, list[str]] = {}
        for rtype in self._types.values():
            versions = result.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return result

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.group == group and t.version == version]

    def register_crd(self, crd: dict[str, Any]) -> None:
        self.unregister_crd(crd["metadata"]["name"])
        types = served_types_of_crd(crd)
        self._crd_types[crd["metadata"]["name"]] = types
        for rtype in types:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def unregister_crd(self, crd_name: str) -> None:
        for rtype in self._crd_types.pop(crd_name, []):
            self._types.pop((rtype.group, rtype.version, rtype.plural), None)

    def crd_names(self) -> list[str]:
        return list(self._crd_types)


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering key: GA before beta before alpha, higher numbers first."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)  # non-conforming names sort last
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -int(major), -int(minor or 0))
