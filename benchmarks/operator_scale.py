"""The operator at scale: settle time, cost at rest and patch-to-status latency (issue 16).

For each size N (100, 1,000, 5,000 by default), on a fresh sandbox API server and SeaweedFS,
with the operator started the way users start it (`kadence operator`, one namespace), it
creates N Kadence objects of every kind, then starts the operator and measures:

- settle: seconds from the operator's start until every object's status has
  observedGeneration == metadata.generation;
- at rest (after settling, over `--rest` seconds, 60 by default): the operator's CPU in cores,
  the API requests per second the operator sends (the sandbox API server's
  apiserver_request_total, by client: kopf's and the kubernetes client's; open watches aside),
  and its RSS;
- patch-to-status: 50 `kubectl patch` of a FeatureSet's spec, each timed until its status shows
  the new generation (p50, p99).

The mix (per N): ModelVersions Ready with a verified artifact (a few hundred at most: they
read S3 once); Datasets with real children (an ingest Job and its ConfigMap each: no kubelet
runs here, so the Jobs stay pending); and the rest waiting on a missing reference:
FeatureSets on a Dataset, TrainingRuns on a FeatureSet, InferenceServices on a model without
versions, MonitorPolicies on an InferenceService.

The base (`--base`, the commit before issue 16's work) runs from a `git worktree` with its
own CRDs, against the same API server build, in the same run; ratios are new / base.

    .venv/bin/python benchmarks/operator_scale.py --sizes 100,1000,5000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from kadence.sandbox import kubeconfig as kubeconfig_module
from kadence.sandbox import s3, supervisor
from kadence.sandbox.cli import api_answers, apiserver_argv

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "scale"
BASE_COMMIT = "9672e38"
GROUP = "/apis/kadence.dev/v1alpha1/namespaces/" + NAMESPACE
OPERATOR_CLIENTS = ("kopf", "OpenAPI-Generator")  # kopf's aiohttp and the kubernetes client
CSV = "tenure,charges,churned\n" + "".join(f"{i % 50},{20 + i % 70}.5,{i % 2}\n" for i in range(40))
SCHEMA = {"target": "churned", "columns": [{"name": "tenure", "type": "int"}, {"name": "charges", "type": "float"},
                                           {"name": "churned", "type": "int", "nullable": False}]}


def mix(size: int) -> dict[str, int]:
    ready = min(300, size // 6)
    with_children = min(300, size // 6)
    waiting = size - ready - with_children
    return {"ModelVersion": ready, "Dataset": with_children, "FeatureSet": waiting - 3 * (waiting // 4),
            "TrainingRun": waiting // 4, "InferenceService": waiting // 4, "MonitorPolicy": waiting // 4}


PLURAL = {"ModelVersion": "modelversions", "Dataset": "datasets", "FeatureSet": "featuresets",
          "TrainingRun": "trainingruns", "InferenceService": "inferenceservices", "MonitorPolicy": "monitorpolicies"}


def body(kind: str, n: int, artifact: tuple[str, str]) -> dict:
    name = f"{kind.lower()}-{n}"
    specs = {
        "ModelVersion": {"model": f"ready-{n}", "version": 1, "task": "classification",
                         "artifact": {"uri": artifact[0], "sha256": artifact[1]}},
        "Dataset": {"source": {"inline": CSV}, "format": "csv", "schema": SCHEMA},
        "FeatureSet": {"datasetRef": {"name": f"missing-{n}"}, "target": "churned",
                       "features": [{"name": "t", "expression": "tenure + 1"}]},
        "TrainingRun": {"featureSetRef": {"name": f"missing-{n}"}, "task": "classification",
                        "objective": {"metric": "f1"}, "model": f"never-{n}"},
        "InferenceService": {"model": f"unregistered-{n}", "stage": "Production"},
        "MonitorPolicy": {"inferenceServiceRef": {"name": f"missing-{n}"}, "interval": "5m",
                          "performance": {"metric": "f1", "threshold": 0.5}},
    }
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": specs[kind]}


@dataclass
class Result:
    side: str
    size: int
    settle_s: float | None = None
    cores: float | None = None
    requests_per_s: float | None = None
    rss_mib: float | None = None
    p50_s: float | None = None
    p99_s: float | None = None
    note: str = ""


class Sandbox:
    """A fresh API server and SeaweedFS in a temporary state dir."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="scale-", dir=root))
        port = supervisor.free_port()
        self.record, _ = supervisor.start_component(self.dir, "apiserver", apiserver_argv(port, self.dir), port=port,
                                                    die_with_parent=True)
        self.url = kubeconfig_module.api_url(port)
        supervisor.wait_until(lambda: api_answers(self.url), timeout=120, record=self.record, what="API server")
        self.kubeconfig = kubeconfig_module.write_kubeconfig(self.dir, self.url)
        self.storage = s3.load_or_create_settings(self.dir)
        self.s3_process = s3.start(self.dir, self.storage)
        self.http = httpx.Client(base_url=self.url, headers=kubeconfig_module.auth_headers(self.dir),
                                 verify=False, timeout=60)

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        kubectl = Path(sys.executable).parent / "kubectl"
        return subprocess.run([str(kubectl if kubectl.exists() else "kubectl"), *args], input=input, text=True,
                              capture_output=True, env={**os.environ, "KUBECONFIG": str(self.kubeconfig)}, timeout=120)

    def operator_requests(self) -> float:
        text = self.http.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            match = re.match(r'^apiserver_request_total\{(.*)\} ([0-9.]+)$', line)
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
                if labels.get("client") in OPERATOR_CLIENTS and labels.get("verb") != "WATCH":
                    total += float(match.group(2))
        return total

    def close(self) -> None:
        self.http.close()
        supervisor.stop_processes([psutil.Process(self.record.pid)], timeout=20)
        try:
            supervisor.stop_processes([psutil.Process(self.s3_process.pid)], timeout=40)
        except (psutil.NoSuchProcess, AttributeError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def upload_artifact(sandbox: Sandbox) -> tuple[str, str]:
    data = b"not a real model: only its sha256 is verified"
    key = f"runs/{NAMESPACE}/bench/model.skops"
    client = s3.client(sandbox.storage)
    s3.ensure_bucket(sandbox.storage)
    client.put_object(sandbox.storage.bucket, key, io.BytesIO(data), len(data))
    return f"s3://{sandbox.storage.bucket}/{key}", hashlib.sha256(data).hexdigest()


def create_objects(sandbox: Sandbox, size: int, crds: Path) -> list[tuple[str, str]]:
    out = sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    assert out.returncode == 0, out.stderr
    time.sleep(2)  # CRDs established
    sandbox.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": NAMESPACE}})
    secret = s3.secret_manifest(sandbox.storage, NAMESPACE)
    sandbox.http.post(f"/api/v1/namespaces/{NAMESPACE}/secrets", json=secret)
    artifact = upload_artifact(sandbox)
    wanted = [(kind, n) for kind, count in mix(size).items() for n in range(count)]

    def create(item):
        kind, n = item
        response = sandbox.http.post(f"{GROUP}/{PLURAL[kind]}", json=body(kind, n, artifact))
        assert response.status_code in (200, 201), (kind, response.status_code, response.text[:300])
        return kind, f"{kind.lower()}-{n}"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(create, wanted))


def unsettled(sandbox: Sandbox) -> int:
    count = 0
    for plural in PLURAL.values():
        for item in sandbox.http.get(f"{GROUP}/{plural}").json()["items"]:
            status = item.get("status") or {}
            if status.get("observedGeneration") != item["metadata"].get("generation"):
                count += 1
    return count


def start_operator(sandbox: Sandbox, source: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "PYTHONPATH": str(source / "operator"),
           **sandbox.storage.env(), "KADENCE_SANDBOX": "1"}
    env.pop("KADENCE_RESYNC_SECONDS", None)
    return subprocess.Popen([sys.executable, "-m", "kadence", "operator", "--namespace", NAMESPACE], env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def patch_latencies(sandbox: Sandbox, names: list[str], timeout: float) -> list[float]:
    latencies = []
    for i, name in enumerate(names):
        patch = json.dumps({"spec": {"datasetRef": {"name": f"still-missing-{i}"}}})
        done = sandbox.kubectl("patch", "featureset", name, "-n", NAMESPACE, "--type", "merge", "-p", patch,
                               "-o", "json")
        assert done.returncode == 0, done.stderr
        patched_at = time.monotonic()
        generation = json.loads(done.stdout)["metadata"]["generation"]
        while time.monotonic() - patched_at < timeout:
            item = sandbox.http.get(f"{GROUP}/featuresets/{name}").json()
            if (item.get("status") or {}).get("observedGeneration") == generation:
                latencies.append(time.monotonic() - patched_at)
                break
            time.sleep(0.02)
        else:
            latencies.append(float("inf"))
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def run_side(side: str, source: Path, size: int, root: Path, rest: float, settle_timeout: float) -> Result:
    result = Result(side, size)
    sandbox = Sandbox(root)
    operator = None
    try:
        created = create_objects(sandbox, size, source / "crds")
        log = root / f"operator-{side}-{size}.log"
        started = time.monotonic()
        operator = start_operator(sandbox, source, log)
        process = psutil.Process(operator.pid)
        left = None
        while time.monotonic() - started < settle_timeout:
            left = unsettled(sandbox)
            if left == 0:
                result.settle_s = time.monotonic() - started
                break
            if operator.poll() is not None:
                result.note = f"the operator exited ({operator.returncode}); see {log}"
                return result
            time.sleep(1)
        if result.settle_s is None:
            result.note = f"{left} of {size} objects not settled after {settle_timeout:.0f} s"
        time.sleep(5)
        cpu_before, requests_before, at = sum(process.cpu_times()[:2]), sandbox.operator_requests(), time.monotonic()
        time.sleep(rest)
        elapsed = time.monotonic() - at
        result.cores = (sum(process.cpu_times()[:2]) - cpu_before) / elapsed
        result.requests_per_s = (sandbox.operator_requests() - requests_before) / elapsed
        result.rss_mib = process.memory_info().rss / 2 ** 20
        feature_sets = [name for kind, name in created if kind == "FeatureSet"][:50]
        latencies = patch_latencies(sandbox, feature_sets, timeout=60)
        result.p50_s, result.p99_s = quantile(latencies, 0.5), quantile(latencies, 0.99)
        return result
    finally:
        if operator is not None and operator.poll() is None:
            supervisor.stop_processes([psutil.Process(operator.pid)], timeout=20)
        sandbox.close()


def base_worktree(commit: str, root: Path) -> Path:
    path = root / f"base-{commit}"
    if not path.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "timeout"
    return f"{value:.{digits}f}"


def ratio(new: float | None, base: float | None) -> str:
    if new is None or base is None or base == 0 or float("inf") in (new, base):
        return "-"
    return f"{new / base:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--base", default=BASE_COMMIT, help="the commit to compare with (a git worktree)")
    parser.add_argument("--rest", type=float, default=60.0, help="seconds measured at rest")
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    parser.add_argument("--sides", default="base,new")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="operator-scale-"))
    sources = {"new": REPO, "base": base_worktree(args.base, root)}
    print(f"date {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, load {os.getloadavg()}, "
          f"{os.cpu_count()} CPUs, base {args.base}")
    results: dict[tuple[str, int], Result] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        for side in args.sides.split(","):
            result = run_side(side, sources[side], size, root, args.rest, args.settle_timeout)
            results[(side, size)] = result
            print(f"{side:4} N={size:5}: settle {fmt(result.settle_s, 1)} s, {fmt(result.cores)} cores at rest, "
                  f"{fmt(result.requests_per_s, 2)} req/s at rest, RSS {fmt(result.rss_mib, 0)} MiB, "
                  f"patch->status p50 {fmt(result.p50_s, 2)} s p99 {fmt(result.p99_s, 2)} s {result.note} "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print("\n| N | side | settle s | cores at rest | req/s at rest | RSS MiB | patch p50 s | patch p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    for (side, size), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {size} | {side} | {fmt(r.settle_s, 1)} | {fmt(r.cores)} | {fmt(r.requests_per_s, 2)} | "
              f"{fmt(r.rss_mib, 0)} | {fmt(r.p50_s, 2)} | {fmt(r.p99_s, 2)} |")
        if side == "new" and ("base", size) in results:
            b = results[("base", size)]
            print(f"| {size} | new/base | {ratio(r.settle_s, b.settle_s)} | {ratio(r.cores, b.cores)} | "
                  f"{ratio(r.requests_per_s, b.requests_per_s)} | {ratio(r.rss_mib, b.rss_mib)} | "
                  f"{ratio(r.p50_s, b.p50_s)} | {ratio(r.p99_s, b.p99_s)} |")
    print(f"load after: {os.getloadavg()}")
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(sources["base"])], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
