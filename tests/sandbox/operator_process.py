"""Start the Kadence operator against the session sandbox, the way `kadence sandbox up` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path


from kadence.sandbox import s3, supervisor

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_operator(apiserver, kubeconfig: Path, kubectl, storage: s3.S3Settings, namespace: str,
                     extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (), name: str = ""):
    """An operator watching only `namespace`, with the storage Secret there and the CRDs applied.
    `args`: more `kadence operator` arguments; `name`: tells the log of one of several apart."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("create", "namespace", namespace, check=False)
    with apiserver.client() as client:
        secret = s3.secret_manifest(storage, namespace)
        client.post(f"/api/v1/namespaces/{namespace}/secrets", json=secret)
    metrics_port = supervisor.free_port()
    log_path = apiserver.state_dir / f"operator-{namespace}{'-' + name if name else ''}.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), **storage.operator_env(),
           "KADENCE_METRICS_PORT": str(metrics_port), "KADENCE_METRICS_ADDRESS": "127.0.0.1", **(extra_env or {})}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "kadence", "operator", "--namespace", namespace, *args],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        process.log_path = log_path
        try:
            yield process
        finally:
            if process.poll() is None:  # a test may have killed it already
                supervisor.stop_processes([supervisor.psutil.Process(process.pid)], timeout=15)


def get_json(kubectl, namespace: str, *what: str) -> dict | None:
    result = kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def condition(obj: dict | None, type_: str) -> dict | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == type_:
            return item
    return None
