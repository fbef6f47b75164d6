"""Serving benchmark: Kadence's model server against KServe's Python server and MLServer.

One RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0) trained on
make_classification(20000, 20 features, random_state=0), served by all three in the same
run. Load comes from `wrk` in a second process (a Lua script POSTs the body and checks
every response's status and predictions), at 8 and 32 connections, with single rows and
32-row batches; repeats are interleaved across servers. Before any load, a Python client
checks a few hundred distinct rows and batches on each server against in-process
predictions.

    .venv/bin/python benchmarks/serving.py                # 15 s runs, 3 repeats
    .venv/bin/python benchmarks/serving.py --quick        # 3 s runs, 1 repeat
    .venv/bin/python benchmarks/serving.py --only kadence,kserve

Rivals live in their own virtual environments under benchmarks/.venvs/ (created on first
use: PyPI `kserve` 0.21 with a minimal `kserve.Model` subclass, and `mlserver` +
`mlserver-sklearn` 1.7.1 with `uvloop==0.21.0`). Everything is written under
benchmarks/.cache/serving/. Needs `wrk` (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
CACHE = HERE / ".cache" / "serving"
MAIN_BIN = Path(sys.executable).parent
SKLEARN_VERSION = None  # filled from the running scikit-learn, so pickles load in the rivals' venvs

RIVAL_PACKAGES = {
    "kserve": ["kserve==0.21.0", "joblib"],
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0", "joblib"],
}
MODEL_NAME = "rf"
FEATURES = [f"f{i}" for i in range(20)]
WRK_THREADS = 2


# ------------------------------------------------------------------ model


@dataclass
class Model:
    estimator: object
    holdout: np.ndarray
    skops_path: Path
    skops_sha256: str
    onnx_path: Path | None
    onnx_sha256: str | None
    onnx_difference: float
    joblib_path: Path


def build_model(directory: Path) -> Model:
    import joblib
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    sys.path.insert(0, str(HERE.parent / "operator"))
    from kadence.serving.compiled import verify_compiled

    X, y = make_classification(20000, 20, random_state=0)
    estimator = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X[:16000], y[:16000])
    holdout = X[16000:]
    directory.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(estimator)
    skops_path = directory / "rf.skops"
    skops_path.write_bytes(data)
    joblib_path = directory / "rf.joblib"
    joblib.dump(estimator, joblib_path)
    ok, difference, onnx_bytes = verify_compiled(estimator, holdout, 1e-6)
    onnx_path = onnx_sha = None
    if ok:
        onnx_path = directory / "rf.onnx"
        onnx_path.write_bytes(onnx_bytes)
        onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    return Model(estimator, holdout, skops_path, hashlib.sha256(data).hexdigest(), onnx_path, onnx_sha,
                 difference, joblib_path)


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(name: str) -> Path:
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    print(f"creating {venv} (one time)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    packages = RIVAL_PACKAGES[name] + [f"scikit-learn=={SKLEARN_VERSION}"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    marker.write_text(" ".join(packages))
    return python


@dataclass
class Server:
    name: str
    protocol: str  # "v1" or "v2"
    port: int
    argv: list[str]
    cwd: Path
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def path(self) -> str:
        return f"/v1/models/{MODEL_NAME}:predict" if self.protocol == "v1" else f"/v2/models/{MODEL_NAME}/infer"

    def start(self) -> None:
        log = open(self.cwd / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, start_new_session=True)

    def wait_ready(self, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{(self.cwd / f'{self.name}.log').read_text()[-3000:]}")
            try:
                ready = f"/v1/models/{MODEL_NAME}" if self.protocol == "v1" else f"/v2/models/{MODEL_NAME}/ready"
                response = httpx.get(self.url + ready, timeout=2)
                if response.status_code == 200 and (self.protocol == "v2" or response.json().get("ready")):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} did not get ready")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # MLServer's workers may ignore SIGTERM
            self.proc.wait(10)


def kadence_server(model: Model, work: Path, log_dir: Path | None, name: str = "kadence") -> Server:
    task = {
        "namespace": "bench", "inferenceService": "rf", "model": MODEL_NAME, "version": 1,
        "artifact": {"uri": str(model.skops_path), "sha256": model.skops_sha256},
        "inputs": [{"name": f, "type": "float"} for f in FEATURES],
        "logging": {"enabled": log_dir is not None, "directory": str(log_dir) if log_dir else None},
    }
    if model.onnx_path is not None:
        task["compiled"] = {"uri": str(model.onnx_path), "sha256": model.onnx_sha256, "verified": True,
                            "maxAbsDifference": model.onnx_difference, "tolerance": 1e-6}
    task_path = work / f"{name}-task.json"
    task_path.write_text(json.dumps(task))
    port = free_port()
    return Server(name, "v1", port, [str(MAIN_BIN / "kadence"), "serve", "--task", str(task_path),
                                     "--host", "127.0.0.1", "--port", str(port)], work)


KSERVE_MODEL = textwrap.dedent('''
    import sys
    import joblib
    import numpy as np
    import kserve

    class RandomForest(kserve.Model):
        def __init__(self, name, path):
            super().__init__(name)
            self.path = path
            self.load()

        def load(self):
            self.model = joblib.load(self.path)
            self.ready = True

        def predict(self, payload, headers=None):
            return {"predictions": self.model.predict(np.asarray(payload["instances"])).tolist()}

    if __name__ == "__main__":
        path = sys.argv.pop(1)
        kserve.ModelServer().start([RandomForest("rf", path)])
''')


def kserve_server(model: Model, work: Path) -> Server:
    python = ensure_venv("kserve")
    (work / "kserve_model.py").write_text(KSERVE_MODEL)
    port = free_port()
    # Defaults otherwise (access log and request tracing on); only the per-request FastAPI
    # deprecation warning is silenced, which would be unfair to count against it.
    return Server("kserve", "v1", port, [str(python), "kserve_model.py", str(model.joblib_path),
                                         f"--http_port={port}", f"--grpc_port={free_port()}", "--workers=1"], work,
                  env={"PYTHONWARNINGS": "ignore::DeprecationWarning"})


def mlserver_server(model: Model, work: Path) -> Server:
    python = ensure_venv("mlserver")
    directory = work / "mlserver"
    (directory / "rf").mkdir(parents=True, exist_ok=True)
    shutil.copy(model.joblib_path, directory / "rf" / "model.joblib")
    (directory / "rf" / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    port = free_port()
    (directory / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(), "debug": False}))
    return Server("mlserver", "v2", port, [str(python.parent / "mlserver"), "start", str(directory)], work)


# ------------------------------------------------------------------ bodies and verification


def body_for(server: Server, rows: np.ndarray) -> bytes:
    if server.protocol == "v1":
        return json.dumps({"instances": rows.tolist()}).encode()
    return json.dumps({"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                                   "data": rows.ravel().tolist()}]}).encode()


def predictions_in(server: Server, response: dict) -> list:
    if server.protocol == "v1":
        return response["predictions"]
    return response["outputs"][0]["data"]


PREDICTIONS_FRAGMENT = re.compile(rb'"(?:predictions|data)"\s*:\s*\[[^\]]*\]')


def verify(server: Server, model: Model, singles: int, batches: int) -> tuple[int, int]:
    """Distinct rows and 32-row batches, each answer checked against in-process predictions.
    Returns (checked requests, wrong or failed answers)."""
    import httpx

    wrong = 0
    expected = model.estimator.predict(model.holdout)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        cases = [(i, i + 1) for i in range(singles)] + [(s, s + 32) for s in range(0, 32 * batches, 32)]
        for start, end in cases:
            response = http.post(server.path, content=body_for(server, model.holdout[start:end]),
                                 headers={"content-type": "application/json"})
            if response.status_code != 200 or predictions_in(server, response.json()) != expected[start:end].tolist():
                wrong += 1
    return len(cases), wrong


def expected_fragment(server: Server, model: Model, rows: np.ndarray) -> bytes:
    """The bytes of the predictions array in this server's answer to `rows`, after checking them."""
    import httpx

    response = httpx.post(server.url + server.path, content=body_for(server, rows),
                          headers={"content-type": "application/json"}, timeout=30)
    response.raise_for_status()
    if predictions_in(server, response.json()) != model.estimator.predict(rows).tolist():
        raise AssertionError(f"{server.name} answers wrongly for the benchmark body")
    match = PREDICTIONS_FRAGMENT.search(response.content)
    if match is None:
        raise AssertionError(f"no predictions array in {server.name}'s answer: {response.content[:200]!r}")
    return match.group(0)


# ------------------------------------------------------------------ load


WRK_SCRIPT = r'''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY"), "rb"); wrk.body = f:read("*all"); f:close()
local f2 = io.open(os.getenv("BENCH_EXPECT"), "rb"); local expected = f2:read("*all"); f2:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; checked = 0 end
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or not string.find(body, expected, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad_total, checked_total = 0, 0
  for _, t in ipairs(threads) do bad_total = bad_total + t:get("bad"); checked_total = checked_total + t:get("checked") end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "bad": %d, "checked": %d, "socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), bad_total, checked_total,
    e.connect + e.read + e.write + e.timeout, e.status))
end
'''


def run_wrk(server: Server, body: bytes, fragment: bytes, connections: int, seconds: float, work: Path) -> dict:
    body_path, expect_path, script = work / "body.json", work / "expect.txt", work / "bench.lua"
    body_path.write_bytes(body)
    expect_path.write_bytes(fragment)
    script.write_text(WRK_SCRIPT)
    argv = ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), server.url + server.path]
    output = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "BENCH_BODY": str(body_path),
                                                                      "BENCH_EXPECT": str(expect_path)})
    line = next((l for l in output.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {output.stdout}\n{output.stderr}")
    result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    return result


# ------------------------------------------------------------------ main


SCENARIOS = [(1, 8), (1, 32), (32, 8), (32, 32)]  # (rows per request, connections)


def main(argv: list[str] | None = None) -> int:
    global SKLEARN_VERSION
    import sklearn

    SKLEARN_VERSION = sklearn.__version__
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds per wrk run (default 15).")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved repeats (default 3).")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 repeat, a shorter verification.")
    parser.add_argument("--only", default="kadence,kadence-log,kserve,mlserver",
                        help="Comma-separated servers: kadence (no prediction log, like the rivals), kadence-log "
                             "(every request logged, to a local directory), kserve, mlserver.")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.repeats = 3.0, 1
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    model = build_model(work / "model")
    print(f"model: RandomForestClassifier(100 trees, depth 8) on 20 features; ONNX verified: "
          f"{model.onnx_path is not None} (max |difference| {model.onnx_difference:.2e}, tolerance 1e-6)")
    log_dir = work / "prediction-logs"
    makers = {"kadence": lambda: kadence_server(model, work, None),
              "kadence-log": lambda: kadence_server(model, work, log_dir, "kadence-log"),
              "kserve": lambda: kserve_server(model, work), "mlserver": lambda: mlserver_server(model, work)}
    servers = [makers[name]() for name in names]
    results: dict[tuple, list[dict]] = {}
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        singles, batches = (100, 10) if args.quick else (500, 40)
        for server in servers:
            checked, wrong = verify(server, model, singles, batches)
            print(f"verification: {server.name}: {checked} distinct requests, {wrong} wrong or failed")
        fragments = {(s.name, rows): expected_fragment(s, model, model.holdout[100:100 + rows])
                     for s in servers for rows, _ in SCENARIOS}
        for repeat in range(args.repeats):
            for rows, connections in SCENARIOS:
                for server in servers:
                    body = body_for(server, model.holdout[100:100 + rows])
                    result = run_wrk(server, body, fragments[(server.name, rows)], connections, args.duration, work)
                    results.setdefault((server.name, rows, connections), []).append(result)
                    print(f"  repeat {repeat + 1} {server.name:9s} rows={rows:<3d} conns={connections:<3d} "
                          f"{result['rps']:9.1f} req/s  p50 {result['p50_us'] / 1000:7.2f} ms  "
                          f"p99 {result['p99_us'] / 1000:7.2f} ms  bad {result['bad']}", flush=True)
        batching = {s.name: micro_batching(s) for s in servers if s.name.startswith("kadence")}
    finally:
        for server in servers:
            server.stop()
    print_table(servers, results, args)
    for name, (calls, rows) in batching.items():
        if calls:
            print(f"{name}: {rows:.0f} rows in {calls:.0f} predict calls, {rows / calls:.2f} rows per call "
                  "(micro-batching of concurrent requests)")
    if log_dir.exists():
        import gzip

        batches = list(log_dir.rglob("*.jsonl.gz"))
        records = sum(gzip.decompress(p.read_bytes()).count(b"\n") for p in batches)
        print(f"kadence-log wrote {records} prediction-log records in {len(batches)} batches under {log_dir}")
    return 0


def micro_batching(server: Server) -> tuple[float, float]:
    """(predict calls, rows) from the Kadence server's batch-size histogram."""
    import httpx

    text = httpx.get(server.url + "/metrics", timeout=10).text
    calls = rows = 0.0
    for line in text.splitlines():
        if line.startswith("kadence_serving_batch_rows_count{"):
            calls += float(line.rsplit(" ", 1)[1])
        elif line.startswith("kadence_serving_batch_rows_sum{"):
            rows += float(line.rsplit(" ", 1)[1])
    return calls, rows


def print_table(servers, results, args) -> None:
    print()
    print(f"median of {args.repeats} run(s) of {args.duration:g} s each; wrk with {WRK_THREADS} threads in a second process")
    header = f"{'server':10s} {'rows':>4s} {'conns':>5s} {'req/s':>10s} {'rows/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'checked':>9s} {'bad':>5s} {'errors':>6s}"
    print(header)
    print("-" * len(header))
    for rows, connections in SCENARIOS:
        for server in servers:
            runs = results.get((server.name, rows, connections), [])
            if not runs:
                continue
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50_us"] for r in runs) / 1000
            p99 = statistics.median(r["p99_us"] for r in runs) / 1000
            checked = sum(r["checked"] for r in runs)
            bad = sum(r["bad"] for r in runs)
            errors = sum(r["socket_errors"] + r["non_2xx"] for r in runs)
            print(f"{server.name:10s} {rows:4d} {connections:5d} {rps:10.1f} {rps * rows:10.1f} {p50:8.2f} {p99:8.2f} "
                  f"{checked:9d} {bad:5d} {errors:6d}")
    for ours_name in ("kadence", "kadence-log"):
        for rival in ("kserve", "mlserver"):
            for connections in (8, 32):
                ours = results.get((ours_name, 1, connections))
                theirs = results.get((rival, 1, connections))
                if ours and theirs:
                    ratio = statistics.median(r["rps"] for r in ours) / statistics.median(r["rps"] for r in theirs)
                    print(f"{ours_name} / {rival}, single rows, {connections} connections: {ratio:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
