"""The exported model scored in headless Chromium by onnxruntime-web, from examples/export/index.html, against
the model server's answers for the same rows.

Chromium is Debian's package (installed by tests/browser.py when missing and root), driven by
Playwright (`.[dev]`); onnxruntime-web comes from npm, installed here into a cache folder on first use.
Each is skipped, saying what is missing, only when it cannot be installed."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from kadence.commands.export import export

from ..browser import apt_install, chromium_or_skip, launched
from ..serving.conftest import churn_frame
from .test_export import _read, model_version, rows_for, served_answers

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "examples" / "export" / "index.html"
ORT_WEB = "onnxruntime-web@1"
NPM_CACHE = Path.home() / ".cache" / "kadence-tests" / "onnxruntime-web"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")


@pytest.fixture(scope="module")
def ort_web() -> Path:
    dist = NPM_CACHE / "node_modules" / "onnxruntime-web" / "dist"
    if not all((dist / name).exists() for name in ORT_FILES):
        if shutil.which("npm") is None:
            why = apt_install("npm")
            if why:
                pytest.skip(f"onnxruntime-web comes from npm, and npm is missing: {why}")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE), ORT_WEB],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not all((dist / name).exists() for name in ORT_FILES):
            pytest.skip(f"npm install {ORT_WEB} failed: {done.stderr.strip().splitlines()[-1:]}")
    return dist


@pytest.fixture(scope="module")
def browser():
    with launched(chromium_or_skip("to run the page")) as opened:
        yield opened


@pytest.fixture(scope="module")
def site(model, ort_web, tmp_path_factory):
    """The example page, onnxruntime-web, the exported model and rows, served over HTTP as a user would."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(PAGE, root / "index.html")
    (root / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copy(ort_web / name, root / "ort" / name)
    export(model_version(model), _read, root, "0.0.0")
    rows = rows_for(churn_frame(40, seed=31)[0])
    (root / "rows.json").write_text(json.dumps(rows))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rows
    server.shutdown()


def test_the_example_page_scores_rows_in_chromium_as_the_server_does(site, browser, served):
    url, rows = site
    page = browser.new_page()
    try:
        page.goto(f"{url}/index.html?model=churn-v3&rows=rows.json")
        page.wait_for_function("window.kadence && window.kadence.status !== 'loading' "
                               "&& (window.kadence.status !== 'ready')", timeout=120_000)
        result = page.evaluate("window.kadence")
        assert result["status"] == "scored", result.get("error")
        labels, probabilities = served_answers(served[1], rows)
        assert result["labels"] == labels
        np.testing.assert_allclose(np.array(result["probabilities"]), probabilities, atol=1e-5)
        assert page.locator("#results tr").count() == len(rows) + 1  # the person sees a row per input
    finally:
        page.close()
