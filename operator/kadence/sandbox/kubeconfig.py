"""The sandbox's kubeconfig and its bearer token: one cluster, one user, context `kadence-sandbox`.

The API server serves HTTPS (`tls`) and accepts only requests that carry the token generated
for the sandbox's state directory (`<state_dir>/token`, mode 0600); the kubeconfig (mode 0600)
carries the same token and the sandbox's CA, so kubectl, kopf and the kubernetes client
authenticate and verify the server without further setup. Raw HTTP clients use
`client_options(state_dir)` (httpx) or `auth_headers` with `tls.client_context`.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import yaml

from . import tls

CONTEXT = "kadence-sandbox"
TOKEN_FILE = "token"


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / "kubeconfig"


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_or_create_token_file(path: Path) -> str:
    """The token in `path`, creating the file (0600, 256 random bits) when it is missing or empty.
    Two processes creating it at once agree: the first file linked into place wins."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            path.chmod(0o600)
            return token
        path.unlink()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    _write_private(temporary, secrets.token_urlsafe(32) + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


def load_or_create_token(state_dir: Path) -> str:
    """The sandbox's bearer token, generated once per state directory."""
    return load_or_create_token_file(token_path(state_dir))


def read_token(state_dir: Path) -> str:
    """The token of a sandbox that was started (FileNotFoundError if none was)."""
    token = token_path(state_dir).read_text().strip()
    if not token:
        raise ValueError(f"{token_path(state_dir)} is empty")
    return token


def auth_headers(state_dir_or_token: Path | str) -> dict[str, str]:
    """`Authorization: Bearer …` for raw HTTP clients of the sandbox API server."""
    token = read_token(state_dir_or_token) if isinstance(state_dir_or_token, Path) else state_dir_or_token
    return {"Authorization": f"Bearer {token}"}


def api_url(port: int) -> str:
    """The sandbox API server's URL on this machine."""
    return f"https://127.0.0.1:{port}"


def client_options(state_dir: Path) -> dict:
    """httpx.Client(...) keyword arguments for the sandbox API server: its token and its CA."""
    return {"headers": auth_headers(state_dir), "verify": tls.client_context(state_dir)}


def kubeconfig(server: str, token: str, ca_pem: bytes, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(state_dir: Path, server: str) -> Path:
    """Write the kubeconfig (mode 0600) with the state directory's token and CA, creating them if needed."""
    path = kubeconfig_path(state_dir)
    ca_pem = tls.load_or_create(state_dir).ca_cert.read_bytes()
    _write_private(path, yaml.safe_dump(kubeconfig(server, load_or_create_token(state_dir), ca_pem),
                                        sort_keys=False))
    return path
