"""Benchmark of the sandbox API server: creates/s, patches/s and watch-event latency with
1,000 and 10,000 custom objects, and the server's memory (RSS).

    python benchmarks/sandbox_api.py [--sizes 1000 10000] [--concurrency 8]

The server runs as its own process (`python -m kadence.sandbox.apiserver`) with a fresh
state directory; the client is aiohttp. Verdict: 10,000 custom objects must fit under
500 MiB RSS. No other Kubernetes API server can be installed on this machine (no
kube-apiserver/etcd binaries, no container engine), so there is no rival to compare with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp
import orjson

from kadence.sandbox.cli import api_answers
from kadence.sandbox.kubeconfig import api_url, auth_headers
from kadence.sandbox.supervisor import wait_until
from kadence.sandbox.tls import client_context

RSS_LIMIT_MIB = 500
GROUP, VERSION, PLURAL = "bench.kadence.dev", "v1", "items"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": PLURAL, "singular": "item", "kind": "Item"},
             "versions": [{"name": VERSION, "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "size": {"type": "integer", "minimum": 0},
                                   "source": {"type": "string"},
                                   "columns": {"type": "array", "items": {
                                       "type": "object", "required": ["name", "type"],
                                       "properties": {"name": {"type": "string"},
                                                      "type": {"type": "string",
                                                               "enum": ["int", "float",
                                                                        "string", "bool"]},
                                                      "nullable": {"type": "boolean",
                                                                   "default": True}}}}}},
                               "status": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


def item(index: int) -> dict:
    """A custom object about the size of a Kadence Dataset (≈1.5 KiB stored)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Item",
            "metadata": {"name": f"item-{index:05d}",
                         "labels": {"app.kubernetes.io/part-of": "bench", "shard": str(index % 10)}},
            "spec": {"size": index, "source": f"s3://bench/data/{index:05d}.csv",
                     "columns": [{"name": f"column_{c}", "type": ["int", "float", "string", "bool"][c % 4]}
                                 for c in range(10)]}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with session.get(url + "/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the API server did not start")


async def run_concurrently(count: int, concurrency: int, make_request) -> float:
    """Send `count` requests with `concurrency` in flight; return requests per second."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker():
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await make_request(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def watch_latencies(session: aiohttp.ClientSession, base: str, samples: int) -> list[float]:
    """Patch one object at a time and time until its watch event arrives."""
    async with session.get(base) as response:
        resource_version = (await response.json())["metadata"]["resourceVersion"]
    latencies = []
    async with session.get(base, params={"watch": "true", "resourceVersion": resource_version,
                                         "fieldSelector": "metadata.name=item-00000"},
                           timeout=aiohttp.ClientTimeout(total=None)) as stream:
        for sample in range(samples):
            sent = time.perf_counter()
            async with session.patch(f"{base}/item-00000", json={"spec": {"size": sample + 10**6}},
                                     headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200, await r.text()
            line = await stream.content.readline()
            latencies.append((time.perf_counter() - sent) * 1000)
            assert b'"MODIFIED"' in line
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def measure(size: int, concurrency: int, latency_samples: int) -> dict:
    port = free_port()
    url = api_url(port)
    with tempfile.TemporaryDirectory(prefix="kadence-bench-") as state_dir:
        server = subprocess.Popen([sys.executable, "-m", "kadence.sandbox.apiserver", "--port",
                                   str(port), "--state-dir", state_dir, "--token-file", f"{state_dir}/token"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The locked server: HTTPS with the sandbox's CA and its bearer token (both created at start).
            wait_until(lambda: api_answers(url), timeout=120, what="API server")
            connector = aiohttp.TCPConnector(limit=concurrency + 2, ssl=client_context(pathlib.Path(state_dir)))
            async with aiohttp.ClientSession(connector=connector, headers=auth_headers(pathlib.Path(state_dir))) as session:
                await wait_ready(session, url)
                idle_rss = rss_mib(server.pid)
                async with session.post(
                        f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                        json=CRD) as response:
                    assert response.status == 201, await response.text()
                base = f"{url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"

                async def create(index: int) -> None:
                    async with session.post(base, json=item(index)) as r:
                        assert r.status == 201, await r.text()

                async def patch(index: int) -> None:
                    async with session.patch(f"{base}/item-{index:05d}",
                                             json={"spec": {"size": index + 1}},
                                             headers={"Content-Type": "application/merge-patch+json"}) as r:
                        assert r.status == 200, await r.text()

                creates = await run_concurrently(size, concurrency, create)
                patches = await run_concurrently(size, concurrency, patch)
                started = time.perf_counter()
                async with session.get(base) as response:
                    listed = len(orjson.loads(await response.read())["items"])
                list_ms = (time.perf_counter() - started) * 1000
                assert listed == size
                latencies = await watch_latencies(session, base, latency_samples)
                rss = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return {"objects": size, "creates/s": creates, "patches/s": patches, "list ms": list_ms,
            "watch p50 ms": statistics.median(latencies),
            "watch p99 ms": percentile(latencies, 0.99), "idle MiB": idle_rss, "RSS MiB": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    rows = [asyncio.run(measure(size, args.concurrency, args.latency_samples))
            for size in args.sizes]
    columns = list(rows[0])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print("Sandbox API server (custom objects ≈ Kadence Dataset size, "
          f"{args.concurrency} requests in flight, one client process on the same machine; "
          f"load average {load} on {os.cpu_count()} CPUs)")
    print(" | ".join(f"{c:>13}" for c in columns))
    for row in rows:
        print(" | ".join(f"{row[c]:>13.1f}" if isinstance(row[c], float) else f"{row[c]:>13}"
                         for c in columns))
    print("Rival: none — no other Kubernetes API server (kube-apiserver, etcd, kind, k3s) can be "
          "installed on this machine, so these numbers stand alone.")
    largest = max(rows, key=lambda r: r["objects"])
    ok = largest["objects"] < 10000 or largest["RSS MiB"] < RSS_LIMIT_MIB
    verdict = "PASS" if ok else "FAIL"
    print(f"Verdict: {verdict} — {largest['objects']} custom objects held in "
          f"{largest['RSS MiB']:.0f} MiB RSS (limit {RSS_LIMIT_MIB} MiB for 10,000).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
