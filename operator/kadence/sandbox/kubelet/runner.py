"""The pod runner: each pod's containers run as local processes, and their state goes back as Pod status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from .. import supervisor
from . import podspec
from .api import EVENTS, PODS, ApiClient, ApiError
from .informer import Informer

log = logging.getLogger(__name__)

# Variables a process needs to run on the host at all; everything else comes from the pod.
_HOST_ENV_PASSTHROUGH = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME",
                         "PYTHONPATH", "SYSTEMROOT", "VIRTUAL_ENV")


def base_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _HOST_ENV_PASSTHROUGH if k in os.environ}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    env["PYTHONUNBUFFERED"] = "1"  # so `kubectl logs -f` shows output as it happens
    return env


@dataclass
class Probe:
    spec: dict

    def get(self, key: str, default: int) -> int:
        value = self.spec.get(key)
        return default if value is None else int(value)

    @property
    def initial_delay(self) -> int:
        return self.get("initialDelaySeconds", 0)

    @property
    def period(self) -> int:
        return max(1, self.get("periodSeconds", 10))

    @property
    def timeout(self) -> int:
        return max(1, self.get("timeoutSeconds", 1))

    @property
    def success_threshold(self) -> int:
        return max(1, self.get("successThreshold", 1))

    @property
    def failure_threshold(self) -> int:
        return max(1, self.get("failureThreshold", 3))


@dataclass
class ContainerRun:
    spec: dict
    init: bool = False
    restart_count: int = 0
    kind: str = "waiting"  # waiting | running | backoff | succeeded | failed (see podspec.pod_phase)
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    process: asyncio.subprocess.Process | None = None
    started_monotonic: float = 0.0
    crash_streak: int = 0

    @property
    def name(self) -> str:
        return self.spec["name"]

    def api_status(self) -> dict:
        status = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": self.ready,
            "started": "running" in self.state,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.process is not None:
            status["containerID"] = f"sandbox://{self.process.pid}"
        return status


class PodWorker:
    """Runs one pod: its port, init containers, containers with restarts and probes, status."""

    def __init__(self, kubelet: "Kubelet", pod: dict):
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.namespace = meta.get("namespace") or "default"
        self.name = meta["name"]
        self.uid = meta.get("uid", "")
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy") or "Always"
        self.init_containers = [ContainerRun(c, init=True) for c in spec.get("initContainers") or []]
        self.containers = [ContainerRun(c) for c in spec.get("containers") or []]
        self.port = 0
        self.named_ports: dict[str, int] = {}  # named container ports after the first: their own local ports
        self.start_time = podspec.now_iso()
        self.init_done = not self.init_containers
        self.init_failed = False
        self.stopping = False
        self._conditions: dict[str, tuple[str, str]] = {}
        self._dirty = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._inherit_previous_status()

    # ---- status -------------------------------------------------------------------------

    def _inherit_previous_status(self) -> None:
        """A pod that ran under a previous kubelet: its containers count as having exited."""
        previous = (self.pod.get("status") or {})
        self.start_time = previous.get("startTime") or self.start_time
        by_name = {s.get("name"): s for s in previous.get("containerStatuses") or []}
        for run in self.containers:
            old = by_name.get(run.name)
            if not old:
                continue
            run.restart_count = int(old.get("restartCount") or 0)
            state = old.get("state") or {}
            if "running" in state or "terminated" in state:
                run.last_state = {"terminated": state.get("terminated") or {
                    "exitCode": 137, "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the sandbox restarted",
                    "startedAt": state["running"].get("startedAt"), "finishedAt": podspec.now_iso()}}
                run.started = True
        if previous.get("phase") in ("Running",) and self.init_containers:
            self.init_done = True

    def phase(self) -> str:
        return podspec.pod_phase([c.kind for c in self.containers], self.init_done, self.init_failed)

    def _condition(self, kind: str, value: bool, reason: str | None = None) -> dict:
        status = "True" if value else "False"
        previous = self._conditions.get(kind)
        if previous is None or previous[0] != status:
            self._conditions[kind] = (status, podspec.now_iso())
        condition = {"type": kind, "status": status, "lastProbeTime": None,
                     "lastTransitionTime": self._conditions[kind][1]}
        if reason:
            condition["reason"] = reason
        return condition

    def api_status(self) -> dict:
        phase = self.phase()
        terminal = phase in ("Succeeded", "Failed")
        all_ready = bool(self.containers) and all(c.ready for c in self.containers) and not terminal
        not_ready_reason = "PodCompleted" if terminal else (None if all_ready else "ContainersNotReady")
        status = {
            "phase": phase,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition("Initialized", self.init_done,
                                None if self.init_done else "ContainersNotInitialized"),
                self._condition("Ready", all_ready, not_ready_reason),
                self._condition("ContainersReady", all_ready, not_ready_reason),
                self._condition("PodScheduled", True),
            ],
            "hostIP": podspec.POD_IP,
            "hostIPs": [{"ip": podspec.POD_IP}],
            "podIP": podspec.POD_IP,
            "podIPs": [{"ip": podspec.POD_IP}],
            "startTime": self.start_time,
            "containerStatuses": [c.api_status() for c in self.containers],
            "qosClass": "BestEffort",
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.api_status() for c in self.init_containers]
        return status

    def changed(self) -> None:
        self._dirty.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not await self._publish():
                self._dirty.set()
                await asyncio.sleep(0.5)

    async def _publish(self) -> bool:
        """Write the pod's status as it is now; False when the API server could not be reached.

        One write at a time, each computing the status when it starts: two writes in flight at
        once can land out of order, and a Running written after Failed moved a finished pod
        back to Running (its Job then deleted it as a pod still active). The kubelet's status
        manager likewise syncs a pod from one worker, so the phase only moves forward.
        """
        async with self._publish_lock:
            try:
                await self.kubelet.client.patch_status(PODS, self.namespace, self.name, self.api_status())
            except ApiError as exc:
                if exc.status != 404:
                    log.warning("status of pod %s/%s: %s", self.namespace, self.name, exc)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("status of pod %s/%s: %s", self.namespace, self.name, exc)
                return False
            return True

    # ---- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        publisher = asyncio.create_task(self._publish_loop())
        try:
            await self._assign_port()
            self.kubelet.event(self.pod, "Scheduled", f"Successfully assigned {self.namespace}/{self.name} "
                                                      f"to {podspec.NODE_NAME}")
            self.changed()
            if not self.init_done:
                await self._run_init_containers()
            if self.init_done and not self.stopping:
                self._tasks = [asyncio.create_task(self._container_loop(c)) for c in self.containers]
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            if not self.stopping:
                await self._publish()
            async with self._publish_lock:  # never cut a write short: it could land after a later one
                publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    async def _assign_port(self) -> None:
        annotations = (self.pod["metadata"].get("annotations") or {})
        wanted = annotations.get(podspec.PORT_ANNOTATION)
        port = self.kubelet.allocate_port(int(wanted) if wanted and wanted.isdigit() else None)
        self.port = port
        patch: dict = {}
        changed: dict[str, str] = {}
        if str(port) != wanted:
            changed[podspec.PORT_ANNOTATION] = str(port)
        for name in podspec.extra_port_names(self.pod):
            key = podspec.NAMED_PORT_ANNOTATION_PREFIX + name
            wanted_named = annotations.get(key)
            named = self.kubelet.allocate_port(int(wanted_named) if wanted_named and wanted_named.isdigit() else None)
            self.named_ports[name] = named
            if str(named) != wanted_named:
                changed[key] = str(named)
        if changed:
            patch["metadata"] = {"annotations": changed}
        if not (self.pod.get("spec") or {}).get("nodeName"):
            patch["spec"] = {"nodeName": podspec.NODE_NAME}  # bound to the sandbox's one node
        if patch:
            try:
                await self.kubelet.client.merge_patch(PODS, self.namespace, self.name, patch)
            except ApiError as exc:
                if exc.status != 422 or "spec" not in patch:
                    raise
                # A server that keeps pod specs immutable: the port annotation alone will do.
                patch.pop("spec")
                if patch:
                    await self.kubelet.client.merge_patch(PODS, self.namespace, self.name, patch)

    async def _run_init_containers(self) -> None:
        for run in self.init_containers:
            while not self.stopping:
                exit_code = await self._run_once(run)
                if exit_code == 0:
                    run.kind = "succeeded"
                    break
                if self.restart_policy == "Never":
                    run.kind = "failed"
                    self.init_failed = True
                    for c in self.containers:
                        c.state = {"waiting": {"reason": "PodInitializing"}}
                    self.changed()
                    return
                await self._back_off(run)
            if self.stopping:
                return
        self.init_done = True
        self.changed()

    async def _container_loop(self, run: ContainerRun) -> None:
        while not self.stopping:
            if run.last_state and run.kind != "waiting":
                await self._back_off(run)
                if self.stopping:
                    return
            elif run.last_state:  # inherited from a previous kubelet: apply the restart policy
                code = run.last_state["terminated"].get("exitCode", 1)
                if not podspec.restart_wanted(self.restart_policy, code):
                    run.state, run.last_state = run.last_state, {}
                    run.kind = "succeeded" if code == 0 else "failed"
                    self.changed()
                    return
                await self._back_off(run)
            exit_code = await self._run_once(run)
            if exit_code is None or self.stopping or run.kind != "backoff":
                return

    async def _back_off(self, run: ContainerRun) -> None:
        delay = self.kubelet.backoff.delay(run.crash_streak)
        if delay <= 0:
            return
        message = f"back-off {delay:g}s restarting failed container={run.name} pod={self.name}_{self.namespace}"
        run.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        run.kind = "backoff"
        self.changed()
        self.kubelet.event(self.pod, "BackOff", "Back-off restarting failed container "
                                                f"{run.name} in pod {self.name}", "Warning")
        await self._sleep_unless_stopping(delay)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _environment(self, run: ContainerRun) -> tuple[dict[str, str], list[str], Path]:
        k = self.kubelet
        env = base_env()
        env.update(podspec.service_link_env(k.services.objects(self.namespace)))
        env.update(k.extra_env)
        env["HOSTNAME"] = self.name
        env["PORT"] = str(self.port)
        env.update(podspec.resolve_env(self.pod, run.spec, k.lookup_configmap, k.lookup_secret))
        # Every declared container port maps to the pod's one local port, so PORT is the
        # sandbox's to set even when the pod declares it (e.g. PORT=8080 for its containerPort);
        # likewise PORT_<NAME> for the named ports that have their own (see podspec.extra_port_names).
        env["PORT"] = str(self.port)
        for name, port in self.named_ports.items():
            env[podspec.named_port_env(name)] = str(port)
        argv = podspec.container_argv(run.spec, env)
        workdir = run.spec.get("workingDir")
        cwd = Path(workdir) if workdir and Path(workdir).is_dir() else k.scratch_dir(self.namespace, self.name)
        cwd.mkdir(parents=True, exist_ok=True)
        return env, argv, cwd

    async def _run_once(self, run: ContainerRun) -> int | None:
        """Start the container's process and wait for it; None when it could not be configured."""
        while not self.stopping:
            try:
                env, argv, cwd = self._environment(run)
                break
            except podspec.EnvError as exc:
                run.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                self.changed()
                await self._sleep_unless_stopping(1.0)
        else:
            return None
        log_path = self.kubelet.log_path(self.namespace, self.name, run.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if log_path.exists() and (run.started or run.restart_count):  # keep the last run for --previous
            log_path.replace(log_path.with_name(f"{run.name}.previous.log"))
        executable = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
        started_at = podspec.now_iso()
        if run.started:
            run.restart_count += 1
        try:
            with open(log_path, "ab") as out:
                process = await asyncio.create_subprocess_exec(
                    executable, *argv[1:], stdin=asyncio.subprocess.DEVNULL, stdout=out,
                    stderr=asyncio.subprocess.STDOUT, env=env, cwd=str(cwd), start_new_session=True)
        except OSError as exc:
            message = f"exec: {argv[0]!r}: {exc.strerror or exc}"
            self.kubelet.event(self.pod, "Failed", f"Error: {message}", "Warning")
            run.started = True
            run.crash_streak += 1
            return self._terminated(run, 128, {"exitCode": 128, "reason": "StartError", "message": message,
                                               "startedAt": started_at, "finishedAt": podspec.now_iso()})
        run.process = process
        run.started = True
        run.started_monotonic = time.monotonic()
        self.kubelet.track_process(process.pid)
        run.state = {"running": {"startedAt": started_at}}
        run.kind = "running"
        run.ready = not run.spec.get("readinessProbe") and not run.spec.get("startupProbe") and not run.init
        self.changed()
        self.kubelet.event(self.pod, "Started", f"Started container {run.name}")
        probes = asyncio.create_task(self._probe_container(run, env))
        try:
            raw = await process.wait()
        finally:
            probes.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await probes
            self.kubelet.untrack_process(process.pid)
            self._kill_group(process.pid, signal.SIGKILL)  # leave no grandchildren behind
        exit_code = raw if raw >= 0 else 128 - raw
        ran_for = time.monotonic() - run.started_monotonic
        run.crash_streak = 1 if ran_for > 2 * self.kubelet.backoff.cap else run.crash_streak + 1
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "startedAt": started_at, "finishedAt": podspec.now_iso(),
                      "containerID": f"sandbox://{process.pid}"}
        if raw < 0:
            terminated["signal"] = -raw
        return self._terminated(run, exit_code, terminated)

    def _terminated(self, run: ContainerRun, exit_code: int, terminated: dict) -> int:
        """Record the exit, and whether the container runs again, in one step (no torn status)."""
        run.ready = False
        restart_policy = "OnFailure" if run.init and self.restart_policy == "Always" else self.restart_policy
        restarts = not self.stopping and podspec.restart_wanted(restart_policy, exit_code) and \
            not (run.init and exit_code == 0)
        if restarts:
            run.last_state = {"terminated": terminated}  # the back-off shows it as lastState
        run.kind = "backoff" if restarts else ("succeeded" if exit_code == 0 else "failed")
        run.state = {"terminated": terminated}
        self.changed()
        return exit_code

    # ---- probes -------------------------------------------------------------------------

    async def _probe_container(self, run: ContainerRun, env: dict[str, str]) -> None:
        startup, readiness, liveness = (run.spec.get(k) for k in ("startupProbe", "readinessProbe",
                                                                   "livenessProbe"))
        if startup:
            if not await self._startup(run, Probe(startup), env):
                return
        if not readiness:
            run.ready = not run.init
            self.changed()
        loops = []
        if readiness:
            loops.append(self._readiness(run, Probe(readiness), env))
        if liveness:
            loops.append(self._liveness(run, Probe(liveness), env))
        if loops:
            await asyncio.gather(*loops)

    async def _startup(self, run: ContainerRun, probe: Probe, env: dict[str, str]) -> bool:
        await asyncio.sleep(probe.initial_delay)
        failures = 0
        while True:
            ok, _ = await self._probe_once(probe.spec, probe.timeout, env)
            if ok:
                return True
            failures += 1
            if failures >= probe.failure_threshold:
                await self._kill_for_probe(run, "Startup probe failed")
                return False
            await asyncio.sleep(probe.period)

    async def _readiness(self, run: ContainerRun, probe: Probe, env: dict[str, str]) -> None:
        await asyncio.sleep(probe.initial_delay)
        successes = failures = 0
        reported = None
        while True:
            ok, why = await self._probe_once(probe.spec, probe.timeout, env)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if not ok and why != reported:  # once per distinct failure, not once per period
                self.kubelet.event(self.pod, "Unhealthy", f"Readiness probe failed: {why}", "Warning")
            reported = None if ok else why
            if ok and successes >= probe.success_threshold and not run.ready:
                run.ready = True
                self.changed()
            elif not ok and failures >= probe.failure_threshold and run.ready:
                run.ready = False
                self.changed()
            await asyncio.sleep(probe.period)

    async def _liveness(self, run: ContainerRun, probe: Probe, env: dict[str, str]) -> None:
        await asyncio.sleep(probe.initial_delay)
        failures = 0
        while True:
            ok, why = await self._probe_once(probe.spec, probe.timeout, env)
            failures = 0 if ok else failures + 1
            if failures >= probe.failure_threshold:
                await self._kill_for_probe(run, f"Liveness probe failed: {why}")
                return
            await asyncio.sleep(probe.period)

    async def _kill_for_probe(self, run: ContainerRun, why: str) -> None:
        self.kubelet.event(self.pod, "Unhealthy", why, "Warning")
        self.kubelet.event(self.pod, "Killing", f"Container {run.name} failed a probe ({why}), "
                                                "will be restarted")
        if run.process is not None:
            await self._terminate_process(run.process, podspec.grace_period_seconds(self.pod))

    async def _probe_once(self, spec: dict, timeout: float, env: dict[str, str]) -> tuple[bool, str]:
        """(success, why it failed) for one HTTP GET, TCP or exec probe against the pod's port."""
        try:
            if "httpGet" in spec:
                http = spec["httpGet"]
                path = http.get("path") or "/"
                scheme = (http.get("scheme") or "HTTP").lower()
                headers = {h["name"]: h["value"] for h in http.get("httpHeaders") or [] if "name" in h}
                url = f"{scheme}://{podspec.POD_IP}:{self.port}{path if path.startswith('/') else '/' + path}"
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False),
                                                 timeout=aiohttp.ClientTimeout(total=timeout)) as session:
                    async with session.get(url, headers=headers, allow_redirects=False) as resp:
                        ok = 200 <= resp.status < 400
                        return ok, f"HTTP probe failed with statuscode: {resp.status}"
            if "tcpSocket" in spec or "grpc" in spec:
                _, writer = await asyncio.wait_for(asyncio.open_connection(podspec.POD_IP, self.port), timeout)
                writer.close()
                return True, ""
            if "exec" in spec:
                command = (spec["exec"] or {}).get("command") or []
                proc = await asyncio.create_subprocess_exec(
                    *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    start_new_session=True)
                try:
                    code = await asyncio.wait_for(proc.wait(), timeout)
                    return code == 0, f"command exited with {code}"
                except asyncio.TimeoutError:
                    self._kill_group(proc.pid, signal.SIGKILL)
                    return False, f"command timed out after {timeout}s"
        except asyncio.TimeoutError:
            return False, f"timeout after {timeout}s"
        except (aiohttp.ClientError, OSError) as exc:
            return False, str(exc) or type(exc).__name__
        return True, ""

    # ---- stopping -----------------------------------------------------------------------

    @staticmethod
    def _kill_group(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    async def _terminate_process(self, process: asyncio.subprocess.Process, grace: float) -> None:
        self._kill_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=max(0.0, grace))
        except asyncio.TimeoutError:
            self._kill_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _pre_stop(self, run: ContainerRun, grace: float) -> None:
        """Run the container's `lifecycle.preStop.exec` command, as the kubelet does before SIGTERM,
        within the grace period. (While it runs, the pod is being deleted, so the Service proxy
        already sends it no new connections: a `sleep` here lets those in flight finish.)"""
        command = (((run.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
        if not command or grace <= 0:
            return
        try:
            env, _, cwd = self._environment(run)
            hook = await asyncio.create_subprocess_exec(
                *[str(part) for part in command], env=env, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as exc:
            self.kubelet.event(self.pod, "FailedPreStopHook", f"PreStop hook of container {run.name} failed: {exc}",
                               "Warning")
            return
        try:
            await asyncio.wait_for(hook.wait(), timeout=grace)
        except asyncio.TimeoutError:
            self._kill_group(hook.pid, signal.SIGKILL)
            await hook.wait()

    async def _stop_container(self, run: ContainerRun, grace: float) -> None:
        started = time.monotonic()
        await self._pre_stop(run, grace)
        if run.process is not None and run.process.returncode is None:
            await self._terminate_process(run.process, grace - (time.monotonic() - started))

    async def stop(self, grace: float) -> None:
        """Run preStop hooks, SIGTERM every container, SIGKILL what outlives the grace period (hooks
        included, as upstream counts them), and wait for the loops."""
        self.stopping = True
        runs = [r for r in self.init_containers + self.containers
                if r.process is not None and r.process.returncode is None]
        for run in runs:
            self.kubelet.event(self.pod, "Killing", f"Stopping container {run.name}")
        await asyncio.gather(*(self._stop_container(r, grace) for r in runs))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Kubelet:
    """Watches pods and runs each one with a PodWorker; finishes deletions the API server began."""

    def __init__(self, client: ApiClient, state_dir: Path, pods: Informer, configmaps: Informer,
                 secrets: Informer, services: Informer, backoff: podspec.Backoff,
                 extra_env: dict[str, str] | None = None):
        self.client = client
        self.state_dir = state_dir
        self.pods = pods
        self.configmaps = configmaps
        self.secrets = secrets
        self.services = services
        self.backoff = backoff
        self.extra_env = dict(extra_env or {})
        self.workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()
        self._finalizing: set[str] = set()
        self._ports: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._events: dict[tuple[str, str, str], tuple[str, int]] = {}
        self._event_lock = asyncio.Lock()
        self._registry = state_dir / "kubelet" / "processes.json"
        self._processes: dict[int, float] = {}
        pods.add_handler(self.on_pod)

    # ---- helpers the workers use --------------------------------------------------------

    def lookup_configmap(self, namespace: str, name: str) -> dict | None:
        return self.configmaps.get(namespace, name)

    def lookup_secret(self, namespace: str, name: str) -> dict | None:
        return self.secrets.get(namespace, name)

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.state_dir / "logs" / namespace / pod / f"{container}.log"

    def scratch_dir(self, namespace: str, pod: str) -> Path:
        return self.state_dir / "pods" / namespace / pod

    def allocate_port(self, wanted: int | None) -> int:
        if wanted and wanted not in self._ports and supervisor.port_is_free(wanted):
            port = wanted
        else:
            while True:
                port = supervisor.free_port()
                if port not in self._ports:
                    break
        self._ports.add(port)
        return port

    def release_ports(self, worker: "PodWorker") -> None:
        for port in (worker.port, *worker.named_ports.values()):
            self.release_port(port)

    def release_port(self, port: int) -> None:
        self._ports.discard(port)

    def event(self, pod: dict, reason: str, message: str, kind: str = "Normal") -> None:
        meta = pod["metadata"]
        now = podspec.now_iso()
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                               "namespace": meta.get("namespace") or "default", "uid": meta.get("uid")},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": podspec.NODE_NAME},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": podspec.NODE_NAME,
        }
        self._spawn(self._post_event((meta.get("uid", ""), reason, message), body))

    async def _post_event(self, key: tuple[str, str, str], body: dict) -> None:
        """Create the Event, or count a repeat on the existing one as the kubelet's correlator does."""
        namespace = body["metadata"]["namespace"]
        async with self._event_lock:
            with contextlib.suppress(ApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError):
                known = self._events.get(key)
                if known is not None:
                    name, count = known
                    try:
                        await self.client.merge_patch(EVENTS, namespace, name, {
                            "count": count + 1, "lastTimestamp": body["lastTimestamp"]})
                        self._events[key] = (name, count + 1)
                        return
                    except ApiError as exc:
                        if exc.status != 404:
                            raise
                created = await self.client.create(EVENTS, namespace, body)
                self._events[key] = (created["metadata"]["name"], 1)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- process registry: lets a new kubelet (or `down`) clean up after a killed one ---

    def track_process(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            self._processes[pid] = psutil.Process(pid).create_time()
        self._save_registry()

    def untrack_process(self, pid: int) -> None:
        self._processes.pop(pid, None)
        self._save_registry()

    def _save_registry(self) -> None:
        self._registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._registry.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in self._processes.items()}))
        tmp.replace(self._registry)

    def kill_orphans(self) -> int:
        return kill_registered_processes(self.state_dir)

    # ---- pod events ---------------------------------------------------------------------

    def on_pod(self, kind: str, pod: dict, old: dict | None) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        if (pod.get("spec") or {}).get("nodeName") not in (None, "", podspec.NODE_NAME):
            return  # bound to another node: its kubelet's, as on a cluster (this one would overwrite its status)
        if kind == "DELETED":
            worker = self.workers.pop(uid, None)
            self._finished.discard(uid)
            for key in [k for k in self._events if k[0] == uid]:
                del self._events[key]
            self._spawn(self._forget(pod, worker))
            return
        if meta.get("deletionTimestamp"):
            if uid not in self._finalizing:
                self._finalizing.add(uid)
                self._spawn(self._finalize(pod))
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.pod = pod
            return
        if uid in self._finished or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        self._spawn(self._run_worker(worker))

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        except Exception:  # noqa: BLE001 - a broken pod must not take the kubelet down
            log.exception("pod %s/%s failed", worker.namespace, worker.name)
        finally:
            if not worker.stopping:
                self._finished.add(worker.uid)
                self.workers.pop(worker.uid, None)
                self.release_ports(worker)

    async def _forget(self, pod: dict, worker: PodWorker | None) -> None:
        """The pod object is gone: stop what may still run, then drop its logs and scratch space."""
        meta = pod["metadata"]
        namespace = meta.get("namespace") or "default"
        if worker is not None:
            await self._stop_worker(worker, min(2, podspec.grace_period_seconds(pod)))
        current = self.pods.get(namespace, meta["name"])
        if current is not None and current["metadata"].get("uid") != meta.get("uid"):
            return  # a new pod with the same name already uses these paths
        for path in (self.state_dir / "logs" / namespace / meta["name"], self.scratch_dir(namespace, meta["name"])):
            shutil.rmtree(path, ignore_errors=True)

    async def _stop_worker(self, worker: PodWorker, grace: float) -> None:
        await worker.stop(grace)
        self.release_ports(worker)

    async def _finalize(self, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        try:
            worker = self.workers.pop(uid, None)
            if worker is not None:
                await self._stop_worker(worker, podspec.grace_period_seconds(pod))
                with contextlib.suppress(ApiError, aiohttp.ClientError, asyncio.TimeoutError):
                    await worker._publish()
            await self.client.delete(PODS, meta.get("namespace"), meta["name"], grace_period_seconds=0, uid=uid)
        finally:
            self._finalizing.discard(uid)

    async def shutdown(self, grace: float = 5) -> None:
        """Stop every pod's processes (the node is going away)."""
        workers = list(self.workers.values())
        self.workers.clear()
        await asyncio.gather(*(w.stop(grace) for w in workers), return_exceptions=True)


def kill_registered_processes(state_dir: Path) -> int:
    """SIGKILL the process groups a kubelet recorded and did not clean up; returns how many."""
    registry = state_dir / "kubelet" / "processes.json"
    try:
        recorded = json.loads(registry.read_text())
    except (OSError, ValueError):
        return 0
    killed = 0
    for pid_text, create_time in recorded.items():
        pid = int(pid_text)
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - float(create_time)) > 0.5:
                continue
        except psutil.Error:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        killed += 1
    registry.write_text("{}")
    return killed
