"""The sandbox's kubeconfig: one cluster, one user, context `kadence-sandbox`."""

from __future__ import annotations

from pathlib import Path

import yaml

CONTEXT = "kadence-sandbox"


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / "kubeconfig"


def kubeconfig(server: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {"token": "kadence-sandbox"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(state_dir: Path, server: str) -> Path:
    path = kubeconfig_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(server), sort_keys=False))
    path.chmod(0o600)
    return path
