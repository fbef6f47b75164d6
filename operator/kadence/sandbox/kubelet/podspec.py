"""Pure decisions about pods: selectors, environment, command lines, restarts and phases."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from ...api import keys
from ...k8s import selectors as label_selectors

PORT_ANNOTATION = keys.SANDBOX_PORT_ANNOTATION
# A named container port after the pod's first gets a local port of its own, kept here
# (`sandbox.kadence.dev/port-metrics`) and given to the containers as PORT_<NAME> (PORT_METRICS).
NAMED_PORT_ANNOTATION_PREFIX = keys.SANDBOX_NAMED_PORT_PREFIX
PROXY_PORT_ANNOTATION = keys.SANDBOX_PROXY_PORT_ANNOTATION
POD_IP = "127.0.0.1"
NODE_NAME = "kadence-sandbox"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- label selectors ----------------------------------------------------------------------

def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against labels.

    An empty, missing or invalid selector matches nothing, as controllers treat it
    (a Service without a selector has no endpoints; a Deployment must have one).
    """
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    try:
        return label_selectors.matches(label_selectors.from_object(selector), labels)
    except label_selectors.SelectorError:
        return False


def service_selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """A Service's plain map selector; an empty one selects nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def controller_uid(obj: dict) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_reference(owner: dict, kind: str, api_version: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_key(obj: dict, kind: str) -> tuple[str, str] | None:
    """(namespace, name) of the controller of `kind` that owns `obj`, if there is one."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return obj["metadata"].get("namespace") or "", ref["name"]
    return None


def owned_pod(owner: dict, kind: str, api_version: str, labels: dict, spec: dict) -> dict:
    """A pod named after `owner` (generateName), carrying its template's annotations and an owner reference."""
    meta = owner["metadata"]
    template_meta = ((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{meta['name']}-",
            "namespace": meta.get("namespace") or "default",
            "labels": labels,
            "annotations": dict(template_meta.get("annotations") or {}),
            "ownerReferences": [owner_reference(owner, kind, api_version)],
        },
        "spec": spec,
    }


# ---- environment --------------------------------------------------------------------------

class EnvError(Exception):
    """A referenced ConfigMap/Secret/key is missing: the container cannot start yet."""


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names are replaced, `$$` escapes, others stay."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return _VAR_REF.sub(replace, text)


Lookup = Callable[[str, str], dict | None]  # (namespace, name) -> object or None


def _decode_secret(secret: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def _field_ref(pod: dict, path: str) -> str:
    meta = pod.get("metadata") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName") or NODE_NAME,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName") or "default",
        "status.podIP": POD_IP,
        "status.hostIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path in simple:
        return simple[path]
    for prefix, source in (("metadata.labels", meta.get("labels") or {}),
                           ("metadata.annotations", meta.get("annotations") or {})):
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted(source.items()))
        match = re.fullmatch(re.escape(prefix) + r"\['(.+)'\]", path)
        if match:
            return source.get(match.group(1), "")
    raise EnvError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(container: dict, ref: dict) -> str:
    resource = ref.get("resource", "")
    kind, _, what = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(what)
    if value is None and what == "cpu":
        return "2"
    return str(value) if value is not None else "0"


def _configmap_data(configmap: dict) -> dict[str, str]:
    return dict(configmap.get("data") or {})


def _referenced_values(kind: str, ref: dict, namespace: str, lookup: Lookup,
                       values_of: Callable[[dict], dict[str, str]]) -> dict[str, str] | None:
    """The values of the ConfigMap or Secret (`kind`) that `ref` names; None when it is missing
    but optional. A missing one that is not optional fails the container as the kubelet does."""
    obj = lookup(namespace, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
    return values_of(obj)


def _referenced_key(kind: str, ref: dict, namespace: str, lookup: Lookup,
                    values_of: Callable[[dict], dict[str, str]]) -> str | None:
    """The value of `ref`'s key in the ConfigMap or Secret it names; None when missing but optional."""
    values = _referenced_values(kind, ref, namespace, lookup, values_of)
    if values is None:
        return None
    if ref.get("key") not in values:
        if ref.get("optional"):
            return None
        raise EnvError(f'couldn\'t find key {ref.get("key")} in {kind} {namespace}/{ref.get("name")}')
    return values[ref["key"]]


def resolve_env(pod: dict, container: dict, configmap: Lookup, secret: Lookup) -> dict[str, str]:
    """The container's environment from envFrom then env (later entries win), as the kubelet builds it."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            values = _referenced_values("ConfigMap", source["configMapRef"], namespace, configmap, _configmap_data)
        elif "secretRef" in source:
            values = _referenced_values("Secret", source["secretRef"], namespace, secret, _decode_secret)
        else:
            continue
        for key, value in (values or {}).items():
            env[prefix + key] = value
    for var in container.get("env") or []:
        name = var.get("name")
        if not name:
            continue
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        if "configMapKeyRef" in source:
            value = _referenced_key("ConfigMap", source["configMapKeyRef"], namespace, configmap, _configmap_data)
            if value is not None:
                env[name] = value
        elif "secretKeyRef" in source:
            value = _referenced_key("Secret", source["secretKeyRef"], namespace, secret, _decode_secret)
            if value is not None:
                env[name] = value
        elif "fieldRef" in source:
            env[name] = _field_ref(pod, source["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in source:
            env[name] = _resource_ref(container, source["resourceFieldRef"])
    return env


def service_link_env(services: list[dict]) -> dict[str, str]:
    """`<NAME>_SERVICE_HOST`/`_PORT` for each Service of the pod's namespace, pointing at its local proxy port."""
    env: dict[str, str] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        port = (meta.get("annotations") or {}).get(PROXY_PORT_ANNOTATION)
        if not port:
            continue
        prefix = meta["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = POD_IP
        env[f"{prefix}_SERVICE_PORT"] = str(port)
        env[f"{prefix}_PORT"] = f"tcp://{POD_IP}:{port}"
    return env


def container_argv(container: dict, env: dict[str, str]) -> list[str]:
    """command + args with `$(VAR)` expanded; the image's entrypoint is unknown in the sandbox."""
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    if not command:
        raise EnvError(
            f"container {container.get('name')!r} has no command: the sandbox runs commands from the "
            f"installed package, not image entrypoints (image {container.get('image')!r})"
        )
    return command + args


# ---- restarts and phases ------------------------------------------------------------------

def restart_wanted(policy: str, exit_code: int) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


@dataclass(frozen=True)
class Backoff:
    """Crash-loop back-off: base × 2^(restarts-1), capped (the kubelet uses 10 s and 300 s)."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, restarts_so_far: int) -> float:
        if restarts_so_far <= 0:
            return 0.0
        return min(self.cap, self.base * 2 ** (restarts_so_far - 1))


def pod_phase(states: list[str], init_done: bool = True, init_failed: bool = False) -> str:
    """The pod phase from its containers' states: each "waiting" (not started yet), "running",
    "backoff" (waiting to be restarted after a run), "succeeded" or "failed" (terminated for good).

    A crash-looping container keeps the pod Running, as on a cluster.
    """
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    if not states or all(state == "waiting" for state in states):
        return "Pending"
    if any(state in ("running", "backoff", "waiting") for state in states):
        return "Running"
    if "failed" in states:
        return "Failed"
    return "Succeeded"


def extra_port_names(pod: dict) -> list[str]:
    """The names of the pod's declared container ports after the first (which is PORT), in order,
    each once: each gets its own local port, e.g. a model server's `metrics` beside its `http`."""
    declared = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
    names: list[str] = []
    for port in declared[1:]:
        name = port.get("name")
        if name and name not in names and name != (declared[0].get("name") if declared else None):
            names.append(name)
    return names


def named_port_env(name: str) -> str:
    """`metrics` -> `PORT_METRICS`."""
    return "PORT_" + name.upper().replace("-", "_")


def grace_period_seconds(pod: dict) -> int:
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return int(meta["deletionGracePeriodSeconds"])
    spec = pod.get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds")
    return 30 if value is None else int(value)
