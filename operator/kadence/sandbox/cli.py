"""`kadence sandbox up|status|down|kubeconfig`: the whole sandbox on one machine.

`up` starts, in order: SeaweedFS (S3), the API server, the node (kubelet,
controllers, Service proxy) and the Kadence operator, each a process in its own
session recorded under `<state_dir>/run/`.  `down` stops only processes whose
pid *and* start time match those records, and waits until they and their ports
are gone.  `up` on a sandbox of which some components stopped (a crash, a kill)
starts those again with their recorded command lines and ports; in the foreground,
`up` does so by itself.

The API server is locked to its owner (`apiserver.security`): HTTPS with the state
directory's CA (`tls`), the bearer token in the kubeconfig (`kubeconfig`), loopback
Hosts only. Everything here listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx

from . import mlflow, s3, supervisor
from . import tls
from . import ray as sandbox_ray
from .kubeconfig import (CONTEXT, api_url, client_options, kubeconfig_path, load_or_create_token, token_path,
                         write_kubeconfig)
from ..api import keys

DEFAULT_API_PORT = 6443
RESTART_BACKOFF_S = 5.0
COMPONENT_ORDER = ("s3", "mlflow", "ray", "apiserver", "node", "operator")
# Started only when asked for (`up --mlflow`, `up --ray`): a sandbox without them is complete.
OPTIONAL_COMPONENTS = ("mlflow", "ray")


def missing_components(records: dict, alive: set[str]) -> list[str]:
    """The components of a running sandbox that are not running: every required one, and an
    optional one only when it was started (it has a record)."""
    return [name for name in COMPONENT_ORDER
            if name not in alive and (name in records or name not in OPTIONAL_COMPONENTS)]


class SandboxError(Exception):
    pass


def default_state_dir() -> Path:
    from ..settings import Settings

    return Path(Settings.from_env().sandbox_dir or Path.home() / ".kadence" / "sandbox")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="Run a local Kubernetes API, kubelet, Service proxy, S3 and the operator.",
        description="The Kadence sandbox: everything the operator needs, on this machine, no cluster needed.")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 0)[1])
    commands = parser.add_subparsers(dest="sandbox_command", metavar="COMMAND")

    def state_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", type=Path, default=None,
                       help="where state, logs and the kubeconfig live "
                            "(default: $KADENCE_SANDBOX_DIR or ~/.kadence/sandbox)")

    up = commands.add_parser("up", help="Start the sandbox.", description="Start the sandbox.")
    state_dir_option(up)
    up.add_argument("--detach", "-d", action="store_true", help="return once everything runs")
    up.add_argument("--port", type=int, default=None,
                    help=f"API server port (default {DEFAULT_API_PORT}, or a free one if that is taken; "
                         "0 for any free port)")
    up.add_argument("--no-operator", action="store_true", help="do not start the Kadence operator")
    up.add_argument("--mlflow", action="store_true",
                    help="also run an MLflow tracking server (SQLite, artifacts in the sandbox's S3); the operator "
                         "logs every TrainingRun and ModelVersion to it (needs pip install 'kadence[mlflow-server]')")
    up.add_argument("--ray", action="store_true",
                    help=f"also run a local Ray head ({sandbox_ray.NUM_CPUS} CPUs, "
                         f"{sandbox_ray.OBJECT_STORE_BYTES >> 20} MiB object store) that `engine: ray` workloads "
                         "submit to (needs pip install 'kadence[ray]')")
    up.set_defaults(handler=cmd_up)

    status = commands.add_parser("status", help="Show what runs.", description="Show each component and "
                                                                                 "each Service's local port.")
    state_dir_option(status)
    status.set_defaults(handler=cmd_status)

    down = commands.add_parser("down", help="Stop the sandbox.", description="Stop what `up` started.")
    state_dir_option(down)
    down.set_defaults(handler=cmd_down)

    kubeconfig = commands.add_parser("kubeconfig", help="Print the kubeconfig.",
                                     description="Print the sandbox's kubeconfig (or only its path).")
    state_dir_option(kubeconfig)
    kubeconfig.add_argument("--path", action="store_true", help="print only the file's path")
    kubeconfig.set_defaults(handler=cmd_kubeconfig)


def _state_dir(args) -> Path:
    return (args.state_dir or default_state_dir()).expanduser().resolve()


# ---- up ---------------------------------------------------------------------------------------

def _choose_api_port(requested: int | None) -> int:
    if requested == 0:
        return supervisor.free_port()
    if requested is not None:
        if not supervisor.port_is_free(requested):
            raise SandboxError(f"port {requested} is already in use; choose another with --port")
        return requested
    return DEFAULT_API_PORT if supervisor.port_is_free(DEFAULT_API_PORT) else supervisor.free_port()


def apiserver_argv(port: int, state_dir: Path, *extra: str) -> list[str]:
    """The command line of the sandbox API server on 127.0.0.1:`port`, with the state directory's
    token (`<state_dir>/token`, created by the server when missing)."""
    return [sys.executable, "-m", "kadence.sandbox.apiserver", "--host", "127.0.0.1", "--port", str(port),
            "--state-dir", str(state_dir), "--token-file", str(token_path(state_dir)), *extra]


def node_argv(url: str, state_dir: Path, backoff: tuple[float, float] | None = None, *extra: str) -> list[str]:
    """The command line of the sandbox node (kubelet, controllers, Service proxy)."""
    argv = [sys.executable, "-m", "kadence.sandbox.kubelet", "--server", url, "--state-dir", str(state_dir),
            "--token-file", str(token_path(state_dir)), "--certificate-authority", str(tls.ca_file(state_dir))]
    if backoff:
        argv += ["--backoff-base", str(backoff[0]), "--backoff-cap", str(backoff[1])]
    return argv + list(extra)


def api_answers(url: str) -> bool:
    """True once the API server at `url` answers its readiness probe. The probe sends no
    credentials and reads nothing but the status, so it does not verify the certificate."""
    try:
        return httpx.get(url + "/readyz", timeout=1, verify=False).status_code == 200
    except httpx.HTTPError:
        return False


def _apply(client: httpx.Client, path: str, body: dict) -> None:
    """Create, or replace if it exists (with the stored resourceVersion)."""
    name = body["metadata"]["name"]
    created = client.post(path, json=body)
    if created.status_code == 409:
        current = client.get(f"{path}/{name}")
        current.raise_for_status()
        body = {**body, "metadata": {**body["metadata"],
                                     "resourceVersion": current.json()["metadata"]["resourceVersion"]}}
        client.put(f"{path}/{name}", json=body).raise_for_status()
    elif created.status_code >= 400:
        raise SandboxError(f"creating {path}/{name} failed: {created.status_code} {created.text[:300]}")


def _bootstrap(url: str, state_dir: Path, settings: s3.S3Settings) -> list[str]:
    """Namespaces, the storage Secret, and the Kadence CRDs; returns notes for the user."""
    notes = []
    with httpx.Client(base_url=url, timeout=30, **client_options(state_dir)) as client:
        for namespace in s3.NAMESPACES:
            response = client.post("/api/v1/namespaces", json={
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            if response.status_code not in (201, 200, 409):
                raise SandboxError(f"creating namespace {namespace} failed: {response.text[:300]}")
            if namespace in s3.SECRET_NAMESPACES:  # the admin keys; workload namespaces get their own
                _apply(client, f"/api/v1/namespaces/{namespace}/secrets", s3.secret_manifest(settings, namespace))
        try:
            from kadence.api.crdgen import all_crds
        except ImportError:
            notes.append("Kadence CRDs not installed: this installation has no CRD generator.")
        else:
            # A CRD the API server refuses must not keep the rest of the sandbox from starting.
            for crd in all_crds():
                try:
                    _apply(client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                except (SandboxError, httpx.HTTPStatusError) as exc:
                    detail = exc.response.text[:500] if isinstance(exc, httpx.HTTPStatusError) else str(exc)
                    notes.append(f"CRD {crd['metadata']['name']} was not installed: {detail}")
    return notes


def _operator_available() -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec("kadence.handlers.main") is not None
    except ImportError:
        return False


def _python_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _prepare_state_dir(state_dir: Path) -> None:
    """The state directory holds Secrets, the token and the kubeconfig: its owner's only."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    load_or_create_token(state_dir)
    tls.load_or_create(state_dir)


def operator_env(state_dir: Path, settings: s3.S3Settings, mlflow_port: int | None = None) -> dict[str, str]:
    extra = {"KADENCE_MLFLOW_TRACKING_URI": mlflow.tracking_uri(mlflow_port)} if mlflow_port else {}
    return _python_env({"KUBECONFIG": str(kubeconfig_path(state_dir)), **settings.operator_env(),
                        "KADENCE_METRICS_ADDRESS": "127.0.0.1", **extra, **ray_env(state_dir)})


def ray_env(state_dir: Path) -> dict[str, str]:
    """KADENCE_RAY_ADDRESS of the sandbox's Ray head, when it runs one (`up --ray`)."""
    head = next((r for r in supervisor.read_records(state_dir) if r.name == sandbox_ray.NAME), None)
    return {"KADENCE_RAY_ADDRESS": sandbox_ray.address(head.port)} if head and head.port else {}


def start_all(state_dir: Path, port: int | None, with_operator: bool = True,
              backoff: tuple[float, float] | None = None, out=sys.stdout,
              snapshot_interval: float | None = None, with_mlflow: bool = False, with_ray: bool = False) -> dict:
    """Start every component; on any failure stop what was started and raise SandboxError.

    `snapshot_interval` (seconds) overrides how often the API server writes its state."""
    _prepare_state_dir(state_dir)
    running = [r for r in supervisor.read_records(state_dir) if r.alive()]
    if running:
        listing = ", ".join(f"{r.name} (pid {r.pid}{f', port {r.port}' if r.port else ''})" for r in running)
        raise SandboxError(f"the sandbox in {state_dir} is already running: {listing}. "
                           "Use `kadence sandbox status` or `kadence sandbox down`.")
    for record in supervisor.read_records(state_dir):
        supervisor.remove_record(state_dir, record.name)
    from .kubelet.runner import kill_registered_processes
    kill_registered_processes(state_dir)

    api_port = _choose_api_port(port)
    url = api_url(api_port)
    summary: dict = {"state_dir": str(state_dir), "server": url, "notes": []}
    try:
        settings = s3.load_or_create_settings(state_dir)
        s3.prepare(state_dir, settings)
        s3_record, _ = supervisor.start_component(state_dir, "s3", s3.weed_argv(settings, state_dir),
                                                  port=settings.s3_port, extra={"ports": settings.ports()})
        print(f"starting S3 (SeaweedFS) on 127.0.0.1:{settings.s3_port} ...", file=out, flush=True)
        api_extra = ("--snapshot-interval", str(snapshot_interval)) if snapshot_interval else ()
        api_record, _ = supervisor.start_component(state_dir, "apiserver",
                                                   apiserver_argv(api_port, state_dir, *api_extra),
                                                   env=_python_env({}), port=api_port)
        print(f"starting the API server on {url} ...", file=out, flush=True)
        supervisor.wait_until(lambda: api_answers(url), timeout=60, record=api_record, what="the API server")
        supervisor.wait_until(lambda: s3.answers(settings), timeout=90, record=s3_record, what="SeaweedFS S3")
        supervisor.wait_until(lambda: s3._try(s3.ensure_bucket, settings), timeout=60, record=s3_record,
                              what="the S3 bucket")
        mlflow_port = start_mlflow(state_dir, settings, summary, out) if with_mlflow else None
        if with_ray:
            print("starting the Ray head ...", file=out, flush=True)
            summary["ray"] = sandbox_ray.address(sandbox_ray.start(state_dir, _python_env({})).port)
        kubeconfig = write_kubeconfig(state_dir, url)
        summary["notes"] += _bootstrap(url, state_dir, settings)

        node_record, _ = supervisor.start_component(state_dir, "node", node_argv(url, state_dir, backoff),
                                                    env=_python_env({}))
        print("starting the node (kubelet, controllers, Service proxy) ...", file=out, flush=True)
        from .kubelet.node import ready_marker
        marker = ready_marker(state_dir)
        supervisor.wait_until(lambda: marker.exists() and marker.read_text() == str(node_record.pid),
                              timeout=60, record=node_record, what="the sandbox node")

        summary["operator"] = "not started"
        if not with_operator:
            summary["notes"].append("The operator was not started (--no-operator).")
        elif not _operator_available():
            summary["notes"].append("The Kadence operator is not available in this installation "
                                    "(kadence.handlers.main is missing): it was not started.")
        else:
            op_record, _ = supervisor.start_component(
                state_dir, "operator", [sys.executable, "-m", "kadence", "operator"],
                env=operator_env(state_dir, settings, mlflow_port))
            print("starting the Kadence operator ...", file=out, flush=True)
            time.sleep(2)  # an operator that cannot start fails within this
            if op_record.alive():
                summary["operator"] = "running"
            else:
                summary["notes"].append("The Kadence operator exited right after starting; see "
                                        f"{op_record.log}:\n{supervisor.tail(op_record.log)}")
                supervisor.remove_record(state_dir, "operator")
        summary["kubeconfig"] = str(kubeconfig)
        summary["s3"] = settings.endpoint
        summary["s3_env"] = settings.env()
        return summary
    except BaseException as exc:
        stop_all(state_dir, out=io.StringIO())
        if isinstance(exc, (supervisor.ComponentFailed, FileNotFoundError)):  # a part failed or is missing
            raise SandboxError(str(exc)) from exc
        raise


def start_mlflow(state_dir: Path, settings: s3.S3Settings, summary: dict, out, die_with_parent: bool = False) -> int:
    """The MLflow tracking server (`up --mlflow`); its port. `down` (stop_all) stops it."""
    if not mlflow.available():
        raise SandboxError("--mlflow needs the MLflow server and boto3: pip install 'kadence[mlflow-server]'")
    port = supervisor.free_port()
    record, _ = supervisor.start_component(state_dir, mlflow.COMPONENT, mlflow.argv(state_dir, port, settings),
                                           env=mlflow.env(settings), port=port, die_with_parent=die_with_parent)
    print(f"starting MLflow on {mlflow.tracking_uri(port)} ...", file=out, flush=True)
    supervisor.wait_until(lambda: mlflow.answers(port), timeout=180, record=record, what="the MLflow server")
    summary["mlflow"] = mlflow.tracking_uri(port)
    return port


@contextlib.contextmanager
def running_sandbox(state_dir: Path, port: int | None = 0, with_operator: bool = True,
                    backoff: tuple[float, float] | None = None,
                    snapshot_interval: float | None = None) -> Iterator[dict]:
    """The whole sandbox for the duration of a `with` block (tests, demos); yields start_all's summary:
    state_dir, server, kubeconfig, s3 (endpoint), s3_env (KADENCE_S3_*), operator, notes."""
    summary = start_all(state_dir, port, with_operator=with_operator, backoff=backoff, out=io.StringIO(),
                        snapshot_interval=snapshot_interval)
    try:
        yield summary
    finally:
        stop_all(state_dir, out=io.StringIO())


def _print_usage(summary: dict, out=sys.stdout) -> None:
    print(f"""
The Kadence sandbox is running (state in {summary['state_dir']}).
  API server:  {summary['server']}   (context {CONTEXT})
  S3 storage:  {summary['s3']}   (admin keys: Secret kadence-storage in kadence-system; each namespace gets its own)
  MLflow:      {summary.get('mlflow', 'not started (kadence sandbox up --mlflow)')}
  Ray:         {summary.get('ray', 'not started (kadence sandbox up --ray)')}
  operator:    {summary['operator']}

Use it:
  export KUBECONFIG={summary['kubeconfig']}
  kubectl apply -f examples/churn/       # from a Kadence checkout, or your own manifests
  kubectl get kadence
  kadence sandbox status      # components and each Service's local port
  kadence sandbox down""", file=out)
    for note in summary["notes"]:
        print(f"\nNote: {note}", file=out)


def _recorded_s3_settings(state_dir: Path) -> s3.S3Settings:
    """The running sandbox's S3 settings as written at its start (never new ports)."""
    import json
    return s3.S3Settings(**json.loads((s3.s3_dir(state_dir) / "settings.json").read_text()))


def _component_env(state_dir: Path, name: str) -> dict[str, str] | None:
    if name == "operator":
        tracking = next((r for r in supervisor.read_records(state_dir) if r.name == mlflow.COMPONENT), None)
        return operator_env(state_dir, _recorded_s3_settings(state_dir), tracking.port if tracking else None)
    if name == mlflow.COMPONENT:
        return mlflow.env(_recorded_s3_settings(state_dir))
    if name in ("apiserver", "node"):
        return _python_env({})
    if name == sandbox_ray.NAME:
        return _python_env({"RAY_USAGE_STATS_ENABLED": "0"})
    return None


def restart_stopped(state_dir: Path, out=sys.stdout) -> list[str]:
    """Start again, with its recorded command line and port, each component of a running sandbox
    that stopped (a crash, a kill); returns the names restarted. The others reconnect by themselves:
    the node and the operator retry the API server, and watches from before relist."""
    records = {r.name: r for r in supervisor.read_records(state_dir)}
    restarted = []
    for name in COMPONENT_ORDER:
        record = records.get(name)
        if record is None or record.alive():
            continue
        if record.port and not supervisor.port_is_free(record.port):
            raise SandboxError(f"{name} stopped but its port {record.port} is taken by another process")
        print(f"restarting {name} (it stopped; was pid {record.pid}) ...", file=out, flush=True)
        new, _ = supervisor.start_component(state_dir, name, record.argv, env=_component_env(state_dir, name),
                                            port=record.port, extra=record.extra)
        if name == "apiserver":
            url = api_url(record.port)
            supervisor.wait_until(lambda: api_answers(url), timeout=60, record=new, what="the API server")
        restarted.append(name)
    return restarted


def _partially_running(state_dir: Path) -> bool:
    records = supervisor.read_records(state_dir)
    return any(r.alive() for r in records) and not all(r.alive() for r in records)


def cmd_up(args) -> int:
    state_dir = _state_dir(args)
    if _partially_running(state_dir):
        try:
            restarted = restart_stopped(state_dir)
        except (SandboxError, supervisor.ComponentFailed) as exc:
            print(f"kadence sandbox up: {exc}", file=sys.stderr)
            return 1
        print(f"The sandbox in {state_dir} was partly running: restarted {', '.join(restarted)}.")
        return 0
    try:
        summary = start_all(state_dir, args.port, with_operator=not args.no_operator, with_mlflow=args.mlflow,
                            with_ray=args.ray)
    except SandboxError as exc:
        print(f"kadence sandbox up: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything started so far was stopped", file=sys.stderr)
        return 130
    _print_usage(summary)
    if args.detach:
        return 0
    print("\nRunning in the foreground; press Ctrl-C to stop everything.", flush=True)
    stopping = {"now": False}

    def request_stop(signum, frame):
        stopping["now"] = True
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # A component that stops is started again, at most once per RESTART_BACKOFF_S each.
    last_restart: dict[str, float] = {}
    while not stopping["now"]:
        for record in supervisor.read_records(state_dir):
            if record.alive() or time.monotonic() - last_restart.get(record.name, -RESTART_BACKOFF_S) \
                    < RESTART_BACKOFF_S:
                continue
            last_restart[record.name] = time.monotonic()
            print(f"warning: {record.name} (pid {record.pid}) stopped; see {record.log}", file=sys.stderr)
            try:
                restart_stopped(state_dir)
            except (SandboxError, supervisor.ComponentFailed, OSError) as exc:
                print(f"warning: restarting {record.name} failed: {exc}", file=sys.stderr)
        time.sleep(0.5)
    print("\nstopping the sandbox ...", flush=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_all(state_dir)
    return 0


# ---- down -------------------------------------------------------------------------------------

def _wait_ports_free(ports: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    busy = ports
    while time.monotonic() < deadline:
        busy = [p for p in ports if not supervisor.port_is_free(p)]
        if not busy:
            return []
        time.sleep(0.2)
    return busy


def stop_all(state_dir: Path, out=sys.stdout) -> list[str]:
    """Stop every recorded component that is still the process we started; returns problems left."""
    records = {r.name: r for r in supervisor.read_records(state_dir)}
    procs = {name: r.process() for name, r in records.items()}
    problems: list[str] = []
    # SeaweedFS is slow to exit (see s3.STOP_GRACE_SECONDS): ask it first, collect it last.
    s3_asked_at = time.monotonic()
    if procs.get("s3") is not None:
        supervisor.signal_group(procs["s3"], signal.SIGTERM)
    for name, timeout in (("operator", 15), ("node", 30), ("apiserver", 15), (mlflow.COMPONENT, 15),
                          (sandbox_ray.NAME, 30)):
        proc = procs.get(name)
        if proc is None:
            continue
        print(f"stopping {name} (pid {proc.pid}) ...", file=out, flush=True)
        left = supervisor.stop_processes([proc], timeout=timeout)
        if left:
            problems.append(f"{name}: pids {[p.pid for p in left]} did not exit")
    from .kubelet.runner import kill_registered_processes
    kill_registered_processes(state_dir)
    if procs.get("s3") is not None:
        print(f"stopping s3 (pid {procs['s3'].pid}) ...", file=out, flush=True)
        grace_left = s3.STOP_GRACE_SECONDS - (time.monotonic() - s3_asked_at)
        left = supervisor.stop_processes([procs["s3"]], timeout=max(0.5, grace_left))
        if left:
            problems.append(f"s3: pids {[p.pid for p in left]} did not exit")
    ports = []
    for record in records.values():
        ports += [record.port] if record.port else []
        ports += record.extra.get("ports", [])
    busy = _wait_ports_free(sorted(set(ports)), timeout=10)
    if busy:
        problems.append(f"ports still in use: {busy}")
    for name in records:
        supervisor.remove_record(state_dir, name)
    return problems


def cmd_down(args) -> int:
    state_dir = _state_dir(args)
    records = supervisor.read_records(state_dir)
    if not any(r.alive() for r in records):
        for record in records:
            supervisor.remove_record(state_dir, record.name)
        print(f"The sandbox in {state_dir} is not running.")
        return 0
    problems = stop_all(state_dir)
    if problems:
        for problem in problems:
            print(f"kadence sandbox down: {problem}", file=sys.stderr)
        return 1
    print("The sandbox is stopped; its state stays in " + str(state_dir))
    return 0


# ---- status / kubeconfig ----------------------------------------------------------------------

def _services(url: str, state_dir: Path) -> list[tuple[str, str, str]]:
    try:
        with httpx.Client(timeout=5, **client_options(state_dir)) as client:
            items = client.get(url + "/api/v1/services").json().get("items", [])
    except (httpx.HTTPError, ValueError, OSError):
        return []
    rows = []
    for svc in items:
        meta = svc["metadata"]
        port = (meta.get("annotations") or {}).get(keys.SANDBOX_PROXY_PORT_ANNOTATION, "-")
        rows.append((meta.get("namespace", ""), meta["name"], port))
    return sorted(rows)


def collect_status(state_dir: Path) -> dict:
    records = {r.name: r for r in supervisor.read_records(state_dir)}
    components = []
    for name in COMPONENT_ORDER:
        record = records.get(name)
        if record is None and name in OPTIONAL_COMPONENTS:
            continue  # not asked for
        if record is None:
            components.append({"name": name, "pid": None, "port": None, "alive": False})
        else:
            components.append({"name": name, "pid": record.pid, "port": record.port, "alive": record.alive(),
                               "log": record.log})
    api = records.get("apiserver")
    services = _services(api_url(api.port), state_dir) if api is not None and api.alive() else []
    return {"components": components, "services": services}


def cmd_status(args) -> int:
    state_dir = _state_dir(args)
    status = collect_status(state_dir)
    print(f"Kadence sandbox in {state_dir}")
    print(f"{'COMPONENT':<11} {'PID':>8} {'PORT':>6}  STATE")
    for c in status["components"]:
        state = "running" if c["alive"] else ("stopped" if c["pid"] else "not started")
        print(f"{c['name']:<11} {c['pid'] or '-':>8} {c['port'] or '-':>6}  {state}")
    if status["services"]:
        print(f"\n{'NAMESPACE':<20} {'SERVICE':<30} LOCAL PORT")
        for namespace, name, port in status["services"]:
            print(f"{namespace:<20} {name:<30} {port}")
    path = kubeconfig_path(state_dir)
    if path.exists():
        print(f"\nexport KUBECONFIG={path}")
    return 0 if any(c["alive"] for c in status["components"]) else 3


def cmd_kubeconfig(args) -> int:
    path = kubeconfig_path(_state_dir(args))
    if not path.exists():
        print(f"kadence sandbox kubeconfig: no kubeconfig at {path}; run `kadence sandbox up` first",
              file=sys.stderr)
        return 1
    print(str(path) if args.path else path.read_text(), end="\n" if args.path else "")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kadence")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
