"""The sandbox's Ray cluster (`kadence sandbox up --ray`): one real Ray head on this machine.

`ray start --head --block` runs the GCS, the raylet and the workers it starts as children of
one supervised process, capped to NUM_CPUS CPUs and an OBJECT_STORE_BYTES object store (this
machine is small and shared with the API server, the kubelet's pods and SeaweedFS), without
the dashboard. Its session files live in a short temporary directory of their own (Ray's Unix
sockets must fit in 107 characters, a test's state directory may not). The operator gets
KADENCE_RAY_ADDRESS=127.0.0.1:<port> and passes it to every workload Job, so `engine: ray`
workloads submit to this head; `down` stops it with the other components.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from ..executables import installed
from . import supervisor

NAME = "ray"
NUM_CPUS = 2
OBJECT_STORE_BYTES = 256 << 20
START_TIMEOUT_S = 120


def find_ray() -> str:
    """The `ray` executable beside this Python (pip install 'kadence[ray]')."""
    found = installed("ray")
    if not found:
        raise FileNotFoundError("the sandbox's --ray needs Ray: pip install 'kadence[ray]'")
    return found


def temp_dir(state_dir: Path) -> Path:
    """A short directory for Ray's session files (sockets), one per state directory."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"kray-{digest}"


def ray_argv(port: int, state_dir: Path) -> list[str]:
    return [find_ray(), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
            "--num-cpus", str(NUM_CPUS), "--object-store-memory", str(OBJECT_STORE_BYTES),
            "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp_dir(state_dir))]


def address(port: int) -> str:
    return f"127.0.0.1:{port}"


def ready(state_dir: Path) -> bool:
    """The head's raylet is up: `ray start` writes the session's raylet socket last."""
    return (temp_dir(state_dir) / "session_latest" / "sockets" / "raylet").exists()


def start(state_dir: Path, env: dict[str, str], port: int | None = None,
          die_with_parent: bool = False) -> supervisor.ComponentRecord:
    """Start the head and wait until a driver can connect to it."""
    port = port or supervisor.free_port()
    shutil.rmtree(temp_dir(state_dir) / "session_latest", ignore_errors=True)
    record, _ = supervisor.start_component(state_dir, NAME, ray_argv(port, state_dir),
                                           env={**env, "RAY_USAGE_STATS_ENABLED": "0"}, port=port,
                                           die_with_parent=die_with_parent)
    supervisor.wait_until(lambda: supervisor.port_accepts(port) and ready(state_dir), timeout=START_TIMEOUT_S,
                          record=record, what="the Ray head")
    return record
