"""Headless Chromium for the browser tests (the console's pages, the exported model's web page):
Debian's `chromium` driven by Playwright (`.[dev]`, extra `console-test`), never Playwright's own
browser download. Chromium and npm are installed with apt when missing and the tests run as root;
otherwise a test is skipped saying how to install them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


def apt_install(package: str) -> str | None:
    """Install a Debian package; None when done, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return f"installing it needs root (run: sudo apt-get install {package})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ([], ["update"]):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True,
                                text=True, timeout=900)
        if result.returncode == 0:
            return None
    return f"apt-get install {package} failed: {result.stderr.strip().splitlines()[-1:]}"


def chromium_or_skip(needed_for: str) -> str:
    """The path of Debian's chromium, installed first when missing; skips when it cannot be."""
    if not Path(CHROMIUM).exists():
        why = apt_install("chromium")
        if why:
            pytest.skip(f"Debian's chromium is needed {needed_for} and {why}")
    return CHROMIUM


@contextlib.contextmanager
def launched(chromium: str):
    """A headless Chromium browser (Playwright's sync API) for the duration of the block."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (extra console-test)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
