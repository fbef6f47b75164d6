"""The sandbox's node: a kubelet that runs pods as local processes, the Job, ReplicaSet,
Deployment and HorizontalPodAutoscaler controllers, and the Service proxy, all in one process
talking to the API server over HTTP (`python -m kadence.sandbox.kubelet --server URL --state-dir DIR`).

What differs from a cluster, by design:
- Images are recorded, not pulled: a container runs its `command` + `args` on this machine,
  with the installed environment's bin directory first on PATH. A container without a
  command cannot start (CreateContainerConfigError says so).
- Every pod gets one free local port, in env `PORT` and annotation `sandbox.kadence.dev/port`;
  its first declared container port and all probe ports mean that port. Each further named
  container port gets a local port of its own, in env `PORT_<NAME>` and annotation
  `sandbox.kadence.dev/port-<name>` (a model server's `metrics`). Pods run on 127.0.0.1.
- Volumes are not mounted: paths in the pod spec are paths on this machine. The working
  directory is the container's `workingDir` when it exists here, else a per-pod scratch
  directory `<state_dir>/pods/<namespace>/<pod>`.
- Services are reached through a local port per Service (annotation
  `sandbox.kadence.dev/proxy-port`), also given to pods as `<NAME>_SERVICE_HOST/PORT`;
  there is no cluster DNS.
- Restart and retry back-off starts at 1 s and stops growing at 60 s (Kubernetes: 10 s, 300 s);
  both are options of the node.
- Autoscalers read CPU and memory from the pods' process trees (no metrics-server).
- Pods run as the user who started the sandbox; servers in them are told to listen on
  127.0.0.1 only (env `KADENCE_BIND_ADDRESS`). A deleted pod's `lifecycle.preStop.exec` hook
  runs before SIGTERM, within the grace period (httpGet hooks are not run).
"""

from .node import Node, main

__all__ = ["Node", "main"]
