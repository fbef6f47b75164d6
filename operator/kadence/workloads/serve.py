"""`kadence serve`: the model server (KServe v1 + Open Inference Protocol v2).

The task spec (`kadence.serving.task.ServeTask`) comes from `--task FILE`, from JSON in
`KADENCE_TASK`, or from the flags below for a quick local run:

    kadence serve --artifact file:///tmp/model.skops --sha256 <hex> --model churn --version 3

Object storage (artifact download, prediction logs, feedback) is configured by the
KADENCE_S3_* variables; `--log-dir DIR` writes logs and feedback to a directory instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE", help="Task spec JSON file (else KADENCE_TASK, else the flags below).")
    parser.add_argument("--artifact", metavar="URI", help="Model artifact: s3://…, file:///… or a path.")
    parser.add_argument("--sha256", help="Expected sha256 of the artifact; a mismatch is refused.")
    parser.add_argument("--model", help="Model name (served under this name).")
    parser.add_argument("--version", type=int, default=1, help="Model version number (default 1).")
    parser.add_argument("--inference-service", default=None, help="InferenceService name (log keys); the model name by default.")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
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
    elif os.environ.get("KADENCE_TASK"):
        raw = json.loads(os.environ["KADENCE_TASK"])
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
    if args.workers is not None:
        updates["workers"] = args.workers
    logging_updates = {}
    if args.no_logging:
        logging_updates["enabled"] = False
    if args.sample_rate is not None:
        logging_updates["sample_rate"] = args.sample_rate
    if args.log_dir:
        logging_updates["directory"] = args.log_dir
    if logging_updates:
        updates["logging"] = task.logging.model_copy(update=logging_updates)
    return task.model_copy(update=updates) if updates else task


def build_app(task, predictor=None):
    """The ASGI app for `task`, with its storage: S3 from KADENCE_S3_* when configured."""
    from ..serving.app import ServingApp
    from ..serving.predictlog import DirectorySink

    store = None
    if os.environ.get("KADENCE_S3_ENDPOINT"):
        from ..storage import ObjectStore

        store = ObjectStore.from_env()
    sink = DirectorySink(task.logging.directory) if task.logging.directory else store
    return ServingApp(task, predictor=predictor, sink=sink, store=store)


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


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ..builders.serving import SINGLE_THREADED_NATIVE_LIBS

    for variable in SINGLE_THREADED_NATIVE_LIBS:  # read when the OpenMP/BLAS runtimes load, so before the model
        os.environ.setdefault(variable["name"], variable["value"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    task = task_from_args(args)
    common = dict(host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
                  access_log=False, timeout_graceful_shutdown=30, log_level="info")
    if task.workers == 1:
        server = _GracefulServer(uvicorn.Config(build_app(task), **common))
        server.run()
        return 0 if server.started else 1
    # Several processes share the listening socket; each loads the model and batches on its own.
    import tempfile

    os.environ["KADENCE_SERVE_TASK"] = task.model_dump_json(by_alias=True)
    metrics_dir = tempfile.mkdtemp(prefix="kadence-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("kadence.serving.app:app_from_environment", factory=True, workers=task.workers, **common)
    finally:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="kadence serve")
    configure(parser)
    sys.exit(run(parser.parse_args()))
