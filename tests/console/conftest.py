"""The console's browser tests: Debian's chromium driven by Playwright, installed here when missing.

Playwright comes with `.[dev]` (extra `console-test`); chromium is Debian's package (`apt-get install
chromium`), installed by the `chromium` fixture when the tests run as root with apt, else the
browser tests are skipped saying how to install it. Playwright's own browser download is never used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_or_skip, launched

# The sandbox's real API server, node, S3 and kubectl (one per session, as tests/chart does).
from tests.sandbox.conftest import (  # noqa: F401
    kubectl, sandbox_apiserver, sandbox_kubeconfig, sandbox_node, sandbox_s3, sandbox_state_dir,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_or_skip("for the console's browser tests")


@pytest.fixture(scope="module")
def browser(chromium):
    # Per module: while Playwright's sync API is open it holds an asyncio loop in this thread, and
    # any later test of the same worker that calls asyncio.run() would fail.
    with launched(chromium) as opened:
        yield opened


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
