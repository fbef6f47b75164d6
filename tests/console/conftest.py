"""The console's browser tests: Debian's chromium driven by Playwright, installed here when missing.

Playwright comes with `.[dev]` (extra `console-test`); chromium is Debian's package (`apt-get install
chromium`), installed by the `chromium` fixture when the tests run as root with apt, else the
browser tests are skipped saying how to install it. Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# The sandbox's real API server, node, S3 and kubectl (one per session, as tests/chart does).
from tests.sandbox.conftest import (  # noqa: F401
    kubectl, sandbox_apiserver, sandbox_kubeconfig, sandbox_node, sandbox_s3, sandbox_state_dir,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def _apt_install(package: str) -> str | None:
    """Install a Debian package; None when done, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing it needs root (run: sudo apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ([], ["update"]):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True,
                                text=True, timeout=900)
        if result.returncode == 0:
            return None
    return f"apt-get install {package} failed: {result.stderr.strip().splitlines()[-1:]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        why = _apt_install("chromium")
        if why:
            pytest.skip(f"Debian's chromium is needed for the console's browser tests and {why}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (extra console-test)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
