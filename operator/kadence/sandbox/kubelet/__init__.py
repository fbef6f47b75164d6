"""The sandbox's node: a kubelet that runs pods as local processes, the Job, ReplicaSet and
Deployment controllers, and the Service proxy, all in one process talking to the API server
over HTTP (`python -m kadence.sandbox.kubelet --server URL --state-dir DIR`)."""

from .node import Node, main

__all__ = ["Node", "main"]
