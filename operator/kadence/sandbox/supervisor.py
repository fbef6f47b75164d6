"""Start, find and stop the sandbox's own processes.

Every component is started in its own session (process group) so it and its
children can be signalled together and so Ctrl-C in the terminal does not reach
it before `up` decides the stopping order.  Each start writes a record under
`<state_dir>/run/<name>.json` with the pid *and* the process start time: a pid
alone may have been recycled by an unrelated process since, and `down` must
stop only what the sandbox started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

# psutil reports create_time as a float of seconds; a record matches a live
# process when the two agree this closely.
_START_TIME_TOLERANCE_S = 0.5


@dataclass
class ComponentRecord:
    name: str
    pid: int
    create_time: float
    argv: list[str]
    log: str
    port: int | None = None
    extra: dict = field(default_factory=dict)

    def process(self) -> psutil.Process | None:
        """The live process this record describes, or None if it is gone or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > _START_TIME_TOLERANCE_S:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None


def run_dir(state_dir: Path) -> Path:
    return state_dir / "run"


def record_path(state_dir: Path, name: str) -> Path:
    return run_dir(state_dir) / f"{name}.json"


def write_record(state_dir: Path, record: ComponentRecord) -> None:
    path = record_path(state_dir, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(path)


def read_records(state_dir: Path) -> list[ComponentRecord]:
    records = []
    directory = run_dir(state_dir)
    if not directory.is_dir():
        return records
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(ComponentRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue  # a torn or foreign file is not ours to act on
    return records


def remove_record(state_dir: Path, name: str) -> None:
    record_path(state_dir, name).unlink(missing_ok=True)


def start_component(
    state_dir: Path,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    cwd: Path | None = None,
    extra: dict | None = None,
    die_with_parent: bool = False,
) -> tuple[ComponentRecord, subprocess.Popen]:
    """Start `argv` in a new session with output appended to `<state_dir>/logs/<name>.log`.

    `die_with_parent` (Linux) has the kernel SIGTERM the component when its parent dies, for
    callers such as test sessions that must not leave a sandbox behind if they are killed.
    """
    log_path = state_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_terminate_with_parent if die_with_parent and sys.platform == "linux" else None,
        )
    record = ComponentRecord(
        name=name,
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        argv=list(argv),
        log=str(log_path),
        port=port,
        extra=dict(extra or {}),
    )
    write_record(state_dir, record)
    return record, proc


def _terminate_with_parent() -> None:
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_port_with_partner(offset: int, host: str = "127.0.0.1", below: int = 50000) -> int:
    """A free port P such that P + offset is free too (SeaweedFS opens gRPC on port + 10000)."""
    for _ in range(200):
        port = free_port(host)
        if port < below and port_is_free(port + offset, host):
            return port
    # The ephemeral range may sit above `below`; walk a fixed low range instead.
    for port in range(20000, below):
        if port_is_free(port, host) and port_is_free(port + offset, host):
            return port
    raise RuntimeError(f"no free local port P with P+{offset} also free")


class ComponentFailed(RuntimeError):
    pass


def wait_until(
    ready,
    *,
    timeout: float,
    record: ComponentRecord | None = None,
    what: str = "component",
    interval: float = 0.1,
) -> None:
    """Poll `ready()` until it is true; fail early and clearly if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if record is not None and not record.alive():
            raise ComponentFailed(f"{what} exited during start-up; see {record.log}:\n{tail(record.log)}")
        if time.monotonic() > deadline:
            where = f"; see {record.log}:\n{tail(record.log)}" if record else ""
            raise ComponentFailed(f"{what} did not become ready within {timeout:.0f}s{where}")
        time.sleep(interval)


def tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def signal_group(proc: psutil.Process, sig: int) -> None:
    """Signal the process group the component leads, falling back to the process itself."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def stop_processes(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGTERM each (and its group), wait up to `timeout`, SIGKILL what is left; return survivors."""
    members = _with_descendants(procs)
    for proc in procs:
        signal_group(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    if alive:
        for proc in procs:
            signal_group(proc, signal.SIGKILL)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(alive, timeout=5)
    return alive


def _with_descendants(procs: list[psutil.Process]) -> list[psutil.Process]:
    seen: dict[int, psutil.Process] = {}
    for proc in procs:
        seen[proc.pid] = proc
        try:
            for child in proc.children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
    return list(seen.values())


def python_argv(*module_args: str) -> list[str]:
    return [sys.executable, *module_args]
