"""`kadence serve`: the model server (KServe v1 + Open Inference Protocol v2).

The task spec (`kadence.serving.task.ServeTask`) comes from `--task FILE`, from JSON in
`KADENCE_TASK`, or from the flags below for a quick local run:

    kadence serve --artifact file:///tmp/model.skops --sha256 <hex> --model churn --version 3

Object storage (artifact download, prediction logs, feedback) is configured by the
KADENCE_S3_* variables; `--log-dir DIR` writes logs and feedback to a directory instead.
Feedback needs the bearer token in KADENCE_FEEDBACK_TOKEN (without one it is refused).

Two listeners: the protocol on `--port` (env PORT, default 8080) and Prometheus `/metrics`
on `--metrics-port` (env PORT_METRICS, default 9090), both on `--host` (env
KADENCE_BIND_ADDRESS, default 0.0.0.0). The request limits are the task's (maxBodyBytes,
maxRows, maxConcurrentRequests, predictTimeoutSeconds, bodyTimeoutSeconds) or the flags below.

On SIGTERM the server stops accepting, answers what it holds within the task's
shutdown.drainSeconds, then sends queued shadow copies (mirrorSeconds) and writes the
prediction log (flushSeconds); the Deployment's grace period covers the three and its preStop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..settings import Settings

DEFAULT_PORT = 8080
DEFAULT_METRICS_PORT = 9090


def default_host() -> str:
    return Settings.from_env().bind_address


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE", help="Task spec JSON file (else KADENCE_TASK, else the flags below).")
    parser.add_argument("--artifact", metavar="URI", help="Model artifact: s3://…, file:///… or a path.")
    parser.add_argument("--sha256", help="Expected sha256 of the artifact; a mismatch is refused.")
    parser.add_argument("--model", help="Model name (served under this name).")
    parser.add_argument("--version", type=int, default=1, help="Model version number (default 1).")
    parser.add_argument("--inference-service", default=None, help="InferenceService name (log keys); the model name by default.")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--host", default=None, help="Address of both listeners (default: KADENCE_BIND_ADDRESS, else 0.0.0.0).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)),
                        help="Protocol port (default: PORT, else 8080).")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("PORT_METRICS", DEFAULT_METRICS_PORT)),
                        help="Prometheus /metrics port (default: PORT_METRICS, else 9090); 0 picks a free one.")
    parser.add_argument("--max-body-bytes", type=int, default=None, help="Largest request body (overrides the task).")
    parser.add_argument("--max-rows", type=int, default=None, help="Most rows per request (overrides the task).")
    parser.add_argument("--max-concurrent-requests", type=int, default=None,
                        help="Predict/infer/feedback requests handled at once per worker (overrides the task).")
    parser.add_argument("--predict-timeout", type=float, default=None, metavar="SECONDS",
                        help="Longest wait for a prediction (overrides the task).")
    parser.add_argument("--workers", type=int, default=None, help="Worker processes (overrides the task).")
    parser.add_argument("--log-dir", metavar="DIR", help="Write prediction logs and feedback under DIR instead of S3.")
    parser.add_argument("--no-logging", action="store_true", help="Do not log predictions.")
    parser.add_argument("--sample-rate", type=float, default=None, help="Share of requests logged (0..1).")


def task_from_args(args: argparse.Namespace):
    from pydantic import ValidationError

    from ..serving.task import ServeTask

    raw = None
    if args.task:
        with open(args.task) as handle:
            raw = json.load(handle)
    elif (task_json := Settings.from_env().task):
        raw = json.loads(task_json)
    else:
        missing = [flag for flag, value in (("--artifact", args.artifact), ("--sha256", args.sha256),
                                            ("--model", args.model)) if not value]
        if missing:
            raise SystemExit(f"kadence serve: give --task FILE, KADENCE_TASK, or {', '.join(missing)}")
        raw = {"model": args.model, "version": args.version, "namespace": args.namespace,
               "inferenceService": args.inference_service or args.model,
               "artifact": {"uri": args.artifact, "sha256": args.sha256}}
    try:
        task = ServeTask.model_validate(raw)
    except ValidationError as error:
        raise SystemExit(f"kadence serve: invalid task spec:\n{error}") from None
    updates = {}
    for flag, field in (("workers", "workers"), ("max_body_bytes", "max_body_bytes"), ("max_rows", "max_rows"),
                        ("max_concurrent_requests", "max_concurrent_requests"),
                        ("predict_timeout", "predict_timeout_seconds")):
        if getattr(args, flag, None) is not None:
            updates[field] = getattr(args, flag)
    logging_updates = {}
    if args.no_logging:
        logging_updates["enabled"] = False
    if args.sample_rate is not None:
        logging_updates["sample_rate"] = args.sample_rate
    if args.log_dir:
        logging_updates["directory"] = args.log_dir
    if logging_updates:
        updates["logging"] = task.logging.model_copy(update=logging_updates).model_dump()
    if not updates:
        return task
    try:  # validated like the task itself (model_copy would not check the flags' ranges)
        return ServeTask.model_validate({**task.model_dump(), **updates})
    except ValidationError as error:
        raise SystemExit(f"kadence serve: invalid option:\n{error}") from None


def _graceful_server_class():
    import contextlib
    import signal

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful shutdown, so the process would end
        "killed by SIGTERM"; a stop that flushed everything exits 0 instead."""

        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer


def _GracefulServer(config):
    return _graceful_server_class()(config)


def _metrics_server(host: str, port: int, exposition):
    import logging

    from ..serving.metrics import MetricsServer

    try:
        server = MetricsServer(host, port, exposition).start()
    except OSError as error:
        raise SystemExit(f"kadence serve: cannot serve /metrics on {host}:{port}: {error.strerror or error} "
                         "(choose another port with --metrics-port or PORT_METRICS)") from None
    logging.getLogger(__name__).info("Prometheus metrics on http://%s:%d/metrics", host, server.port)
    return server


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ..builders.serving import SINGLE_THREADED_NATIVE_LIBS

    for variable in SINGLE_THREADED_NATIVE_LIBS:  # read when the OpenMP/BLAS runtimes load, so before the model
        os.environ.setdefault(variable["name"], variable["value"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..serving.app import build_app
    from ..serving.metrics import multiprocess_exposition

    task = task_from_args(args)
    host = args.host or default_host()
    common = dict(host=host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                  access_log=False, timeout_graceful_shutdown=task.shutdown.drain_seconds, log_level="info")
    if task.workers == 1:
        app = build_app(task)

        def exposition():
            if app.metrics is None:  # still loading the model
                return b"", "text/plain; version=0.0.4; charset=utf-8"
            return app.metrics.exposition()

        metrics = _metrics_server(host, args.metrics_port, exposition)
        try:
            server = _GracefulServer(uvicorn.Config(app, **common))
            server.run()
        finally:
            metrics.close()
        return 0 if server.started else 1
    # Several processes share the listening socket; each loads the model and batches on its own.
    # This (parent) process serves /metrics from the workers' shared multiprocess directory.
    import tempfile

    os.environ["KADENCE_SERVE_TASK"] = task.model_dump_json(by_alias=True)
    metrics_dir = tempfile.mkdtemp(prefix="kadence-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    metrics = _metrics_server(host, args.metrics_port, lambda: multiprocess_exposition(metrics_dir))
    try:
        uvicorn.run("kadence.serving.app:app_from_environment", factory=True, workers=task.workers, **common)
    finally:
        metrics.close()
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="kadence serve")
    configure(parser)
    sys.exit(run(parser.parse_args()))
