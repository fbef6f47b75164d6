"""`kadence console`: a local web console on the current kubeconfig's cluster (kadence.console)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

DEFAULT_PORT = 8990


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve a web console of the loop (every model; per model its data, features, training, registry, "
        "canary and monitoring, live) on 127.0.0.1, read-only unless --enable-writes, and open it in the browser.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port to listen on (default {DEFAULT_PORT}; "
                                                                       "0 picks a free one).")
    parser.add_argument("--address", default="127.0.0.1",
                        help="Address to listen on (default 127.0.0.1; 0.0.0.0 inside a pod behind a Service).")
    parser.add_argument("--no-browser", action="store_true", help="Do not open the browser.")
    parser.add_argument("--enable-writes", action="store_true",
                        help="Offer the actions (approve or reject a Manual candidate, promote or abort a canary); "
                             "each is still checked against your RBAC with a SelfSubjectAccessReview.")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[],
                       help="Watch this namespace (repeatable; default: the context's namespace).")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="Watch every namespace.")
    parser.add_argument("--kubeconfig", help="Path of the kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
    parser.add_argument("--context", help="The kubeconfig context to use.")
    parser.add_argument("--s3-endpoint", metavar="HOST:PORT",
                        help="Reach object storage here instead of the endpoint in each namespace's "
                             "kadence-tenant-storage Secret (e.g. through kubectl port-forward).")


def _connect(args: argparse.Namespace):
    """(ApiClient, the context's namespace, the kubeconfig user name)."""
    from kubernetes import client, config

    try:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context)
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        context = (active or {}).get("context") or {}
        if args.context:
            contexts, _ = config.list_kube_config_contexts(config_file=args.kubeconfig)
            context = next((c.get("context") or {} for c in contexts if c["name"] == args.context), context)
        return client.ApiClient(), context.get("namespace") or "default", context.get("user")
    except config.ConfigException:
        if args.kubeconfig or args.context:
            raise
        config.load_incluster_config()
        return client.ApiClient(), "default", None


async def serve(args: argparse.Namespace, out=sys.stdout) -> None:
    from aiohttp import web

    from ..console.cluster import Cluster
    from ..console.server import make_app
    from ..console.watch import Watcher

    api_client, default_namespace, kubeconfig_user = _connect(args)
    namespaces = None if args.all_namespaces else (args.namespace or [default_namespace])
    cluster = Cluster(api_client, kubeconfig_user, args.s3_endpoint)
    user = await asyncio.to_thread(cluster.user)
    watcher = Watcher(cluster.custom, namespaces, asyncio.get_running_loop())
    watcher.start()
    runner = web.AppRunner(make_app(watcher, cluster, args.enable_writes, user), shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, args.address, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    host = "127.0.0.1" if args.address in ("0.0.0.0", "::") else args.address
    url = f"http://{host}:{port}/"
    mode = "writes enabled (still checked against your RBAC)" if args.enable_writes else "read-only"
    scope = ", ".join(watcher.namespaces) if watcher.namespaces is not None else "all namespaces"
    print(f"kadence console: {url}  ({scope}, {mode}, as {user}); Ctrl-C stops it",
          file=out, flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        watcher.stop()
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    from .cluster import explain

    try:
        asyncio.run(serve(args))
    except OSError as error:
        print(f"kadence console: cannot listen on {args.address}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - no kubeconfig, unreachable cluster
        print(f"kadence console: {explain(error, 'kadence', 'read the cluster')}", file=sys.stderr)
        return 1
    return 0
