"""What kube-apiserver refuses in a pod's status update: a container that terminated for good
(the pod does not restart it) may not go back to waiting or running.

The guard upstream added after kubelets reported finished pods as running again
(kubernetes/kubernetes#54530); a Job controller would otherwise count such a pod as active.
"""

from __future__ import annotations

from typing import Any

MESSAGE = "Forbidden: may not be transitioned to non-terminated state"


def illegal_container_transitions(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Causes (as a 422 lists them) for each container whose terminated state `new` undoes."""
    restart_policy = (old.get("spec") or {}).get("restartPolicy") or "Always"
    if restart_policy == "Always":
        return []
    new_statuses = {s.get("name"): s for s in (new.get("status") or {}).get("containerStatuses") or []}
    causes = []
    for index, status in enumerate((old.get("status") or {}).get("containerStatuses") or []):
        terminated = (status.get("state") or {}).get("terminated")
        if terminated is None:
            continue
        if terminated.get("exitCode") != 0 and restart_policy == "OnFailure":
            continue  # a failed container this pod restarts
        after = new_statuses.get(status.get("name"))
        if after is not None and "terminated" not in (after.get("state") or {}):
            causes.append({"reason": "FieldValueForbidden", "message": MESSAGE,
                           "field": f"status.containerStatuses[{index}].state"})
    return causes
