"""Every server of a running sandbox listens on the loopback interface only: the API server, the
Service proxy's ports, SeaweedFS (S3, master, volume, filer and their gRPC ports), the model
servers the kubelet starts (predictions and metrics) and the operator's metrics."""

from __future__ import annotations

import pytest

from .conftest import listening_sockets, sandbox_pids

pytestmark = pytest.mark.sandbox


def test_every_sandbox_server_listens_on_loopback_only(fault_sandbox, served_model):
    pids = sandbox_pids(fault_sandbox.state_dir)
    sockets = listening_sockets(pids)
    model_server = served_model.server_process().pid
    assert any(pid == model_server for pid, _, _ in sockets), "the model server's sockets were inspected"
    assert fault_sandbox.record("apiserver").pid in {pid for pid, _, _ in sockets}
    exposed = [(pid, address, port) for pid, address, port in sockets if address not in ("127.0.0.1", "::1")]
    assert not exposed, f"listening beyond loopback: {exposed}"
