"""Wires the informers, the kubelet, the controllers and the proxy into one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

from .. import proxy as proxy_module
from . import api, podspec
from .autoscaler import AutoscalerController
from .deployments import DeploymentController, ReplicaSetController
from .informer import Informer
from .jobs import JobController
from .runner import Kubelet

log = logging.getLogger("kadence.sandbox.kubelet")

BIND_ADDRESS_ENV = "KADENCE_BIND_ADDRESS"


def ready_marker(state_dir: Path) -> Path:
    return state_dir / "kubelet" / "ready"


class Node:
    def __init__(self, server: str, state_dir: Path, backoff: podspec.Backoff, hpa_sync_period: float = 15.0,
                 *, token: str, ca_file: str | None = None):
        self.server = server
        self.state_dir = state_dir
        self.client = api.ApiClient(server, token, ca_file)
        inform = lambda resource: Informer(self.client, resource)  # noqa: E731
        self.configmaps = inform(api.CONFIGMAPS)
        self.secrets = inform(api.SECRETS)
        self.services = inform(api.SERVICES)
        self.pods = inform(api.PODS)
        self.jobs = inform(api.JOBS)
        self.replicasets = inform(api.REPLICASETS)
        self.deployments = inform(api.DEPLOYMENTS)
        self.hpas = inform(api.HPAS)
        url = urlparse(server)
        self.kubelet = Kubelet(self.client, state_dir, self.pods, self.configmaps, self.secrets, self.services,
                               backoff, extra_env={"KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
                                                   "KUBERNETES_SERVICE_PORT": str(url.port or 80),
                                                   # Servers in pods (kadence serve, metrics) listen
                                                   # on this address: only this machine reaches them.
                                                   BIND_ADDRESS_ENV: podspec.POD_IP})
        self.job_controller = JobController(self.client, self.jobs, self.pods, backoff)
        self.replicaset_controller = ReplicaSetController(self.client, self.replicasets, self.pods)
        self.deployment_controller = DeploymentController(self.client, self.deployments, self.replicasets,
                                                          self.pods)
        self.proxy = proxy_module.ServiceProxy(self.client, self.services, self.pods)
        self.autoscaler = AutoscalerController(self.client, self.hpas, self.deployments, self.pods, self.kubelet,
                                               hpa_sync_period)
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        killed = self.kubelet.kill_orphans()
        if killed:
            log.info("killed %d processes left behind by a previous kubelet", killed)
        # Environment sources first, so pods found by the first list can resolve their env.
        first = [self.configmaps, self.secrets, self.services]
        self._tasks += [asyncio.create_task(i.run()) for i in first]
        await asyncio.gather(*(i.synced.wait() for i in first))
        rest = [self.pods, self.jobs, self.replicasets, self.deployments, self.hpas]
        self._tasks += [asyncio.create_task(i.run()) for i in rest]
        await asyncio.gather(*(i.synced.wait() for i in rest))
        self._tasks += [asyncio.create_task(c.run()) for c in
                        (self.job_controller, self.replicaset_controller, self.deployment_controller, self.proxy,
                         self.autoscaler)]
        marker = ready_marker(self.state_dir)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))

    async def stop(self) -> None:
        ready_marker(self.state_dir).unlink(missing_ok=True)
        await self.kubelet.shutdown()
        await self.proxy.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()


async def serve(server: str, state_dir: Path, backoff: podspec.Backoff, hpa_sync_period: float = 15.0,
                *, token: str, ca_file: str | None = None) -> None:
    node = Node(server, state_dir, backoff, hpa_sync_period, token=token, ca_file=ca_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(node.start())
    await asyncio.wait([starting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception():
        raise starting.exception()
    log.info("sandbox node ready (API server %s)", server)
    await stop.wait()
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kadence.sandbox.kubelet",
                                     description="The sandbox node: kubelet, controllers and Service proxy.")
    parser.add_argument("--server", required=True, help="API server URL, e.g. https://127.0.0.1:6443")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--token-file", required=True, type=Path,
                        help="file holding the API server's bearer token (the sandbox's <state-dir>/token)")
    parser.add_argument("--certificate-authority", type=Path, default=None,
                        help="CA file to verify the API server's HTTPS certificate with "
                             "(the sandbox's <state-dir>/pki/ca.crt)")
    parser.add_argument("--backoff-base", type=float, default=1.0,
                        help="first restart/retry delay in seconds (Kubernetes uses 10)")
    parser.add_argument("--backoff-cap", type=float, default=60.0,
                        help="longest restart/retry delay in seconds (Kubernetes uses 300)")
    parser.add_argument("--hpa-sync-period", type=float, default=15.0,
                        help="seconds between autoscaler evaluations (Kubernetes uses 15)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = args.token_file.read_text().strip()
    if not token:
        parser.error(f"{args.token_file} is empty")
    asyncio.run(serve(args.server, args.state_dir, podspec.Backoff(args.backoff_base, args.backoff_cap),
                      args.hpa_sync_period, token=token,
                      ca_file=str(args.certificate_authority) if args.certificate_authority else None))
    return 0
