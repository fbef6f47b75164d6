"""The sandbox's local Kubernetes API server (issue 4, part 1).

Entry points: `create_app(state_dir, watch_history=None, *, token)` (an aiohttp application),
`run(host, port, state_dir, token_file, ...)` (blocking; SIGTERM snapshots the state and
exits) and `python -m kadence.sandbox.apiserver --host 127.0.0.1 --port P --state-dir DIR
--token-file FILE`.

Modules: `resources` (the served types), `store` (objects, the global resourceVersion,
bounded history, watch fan-out), `api` (create/update/patch/delete semantics, finalizers,
CRDs, the in-process controllers' steps), `patching` (merge, JSON, strategic merge, apply),
`selectors`, `tables` and `jsonpath` (kubectl's Table responses), `discovery`, `gc`,
`defaults` (built-in defaults), `protobuf` (bodies of kubectl's typed generators),
`persistence` (snapshots), `logs` (pod logs), `server` (HTTP only). Schemas (validation,
defaulting, pruning, CEL, OpenAPI) are the `schema` subpackage's.

Behaviour other sandbox parts rely on:
- Pods bound to a node (`spec.nodeName` set) and not yet Succeeded/Failed are deleted
  gracefully, as on a cluster: DELETE sets `deletionTimestamp` (now + grace period); the
  kubelet stops the containers and confirms with DELETE `gracePeriodSeconds=0`. If nobody
  confirms, the server removes the pod once the grace period has run out. Unbound or
  finished pods are removed at once.
- Pod logs are served from `<state_dir>/logs/<namespace>/<pod>/<container>.log` (and
  `.previous.log`); `timestamps=true` stamps lines with the file's modification time.
- Jobs orphan their pods on a DELETE that names no propagationPolicy (as batch/v1 does
  upstream); Deployments and ReplicaSets collect them in the background.
- Every namespace gets a `default` ServiceAccount; events expire an hour after their last
  write; the watch history keeps the last 5,000 events (older resourceVersions get 410).
- Locked to its owner (`security`): a loopback Host, the bearer token of the sandbox's state
  directory (in its kubeconfig) and JSON/YAML/protobuf/patch bodies only; whoever holds the token
  may do everything, and access reviews say so.
- Snapshots are atomic, 0600, and the previous good one is kept (`persistence`); after a crash
  resourceVersions continue above every one handed out before it.
"""

from .server import create_app, run

__all__ = ["create_app", "run"]
