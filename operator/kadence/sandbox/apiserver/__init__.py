"""The sandbox's local Kubernetes API server (issue 4, part 1).

Entry points: `create_app(state_dir)` (an aiohttp application), `run(host, port, state_dir)`
(blocking; SIGTERM snapshots the state and exits) and
`python -m kadence.sandbox.apiserver --host 127.0.0.1 --port P --state-dir DIR`.

Behaviour other sandbox parts rely on:
- Pods bound to a node (`spec.nodeName` set) and not yet Succeeded/Failed are deleted
  gracefully, as on a cluster: DELETE sets `deletionTimestamp` (now + grace period); the
  kubelet stops the containers and confirms with DELETE `gracePeriodSeconds=0`. If nobody
  confirms, the server removes the pod once the grace period has run out. Unbound or
  finished pods are removed at once.
- Pod logs are served from `<state_dir>/logs/<namespace>/<pod>/<container>.log`.
"""

from .server import create_app, run

__all__ = ["create_app", "run"]
