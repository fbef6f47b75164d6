"""The `kadence` command: one entry point, subcommands, `--help` everywhere.

Workload subcommands live in `kadence.workloads.<name>`; each such module provides
`configure(parser)` to declare its arguments and `run(args) -> int`. A workload
whose module does not provide them yet is reported as not available, with no
pretend output.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__

WORKLOADS = {
    "ingest": "Ingest a Dataset version: fetch, validate, profile, snapshot (runs in a Job).",
    "materialize": "Materialize a FeatureSet version for a dataset version (runs in a Job).",
    "train": "Run a TrainingRun's AutoML search and register the winner (runs in a Job).",
    "monitor": "Evaluate a MonitorPolicy over a window of predictions (runs in a Job).",
    "alert": "Deliver a MonitorPolicy alert to its webhook, with retries (runs in a Job).",
    "canary": "Compute a canary's quality per version from the prediction log and feedback (runs in a Job).",
    "serve": "Serve a ModelVersion over KServe v1 and Open Inference Protocol v2.",
    "batch": "Score a table with a registered model for one BatchPrediction run (runs in a Job).",
    "track": "Register a ModelVersion in MLflow's model registry, its stage as an alias (runs in a Job).",
    "erase": "Erase an ErasureRequest's subject from logs, exports and Dataset snapshots (runs in a Job).",
}

# Commands that work with the registry and catalog; each lives in kadence.commands.<name>.
TOOLS = {
    "features": "List the feature catalog across namespaces.",
    "models": "List the model registry and show a model's lineage.",
    "demo": "Run the closed-loop demo on the sandbox.",
    "console": "Serve a web console of the loop (read-only unless --enable-writes) on the current cluster.",
    "data": "Erase entities from prediction logs, feedback and exports (personal data), with an audit record.",
}


# The extra that brings each command's optional dependencies, and the modules it needs from it.
EXTRAS = {"train": "train", "serve": "serve", "sandbox": "sandbox", "demo": "all"}
REQUIRES = {
    "train": ("optuna", "matplotlib"),
    "serve": ("uvicorn", "orjson", "onnxruntime"),
    "sandbox": ("celpy", "psutil", "jsonpatch", "orjson"),
    "demo": ("matplotlib", "optuna", "uvicorn", "orjson", "celpy", "psutil", "jsonpatch"),
}


class NotAvailable(Exception):
    pass


class MissingDependency(Exception):
    def __init__(self, module: str):
        super().__init__(module)
        self.module = module


def _load(module_name: str):
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise NotAvailable from error
        if error.name and not error.name.startswith("kadence"):
            raise MissingDependency(error.name) from error
        raise
    if not (hasattr(module, "configure") and hasattr(module, "run")):
        raise NotAvailable
    return module


def _add_pluggable(subparsers, name: str, help_text: str, module_name: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    try:
        module = _load(module_name)
    except NotAvailable:
        parser.set_defaults(handler=lambda args, _name=name: _not_available(_name))
        return
    except MissingDependency as missing:
        parser.set_defaults(handler=lambda args, _name=name, _module=missing.module: _needs_extra(_name, _module))
        return
    module.configure(parser)
    parser.set_defaults(handler=module.run)


def _not_available(name: str) -> int:
    print(f"kadence {name}: not available in this release of Kadence yet.", file=sys.stderr)
    return 2


def _needs_extra(name: str, module: str) -> int:
    extra = EXTRAS.get(name, "all")
    print(f"kadence {name}: the Python module {module!r} is not installed; "
          f"install it with: pip install 'kadence[{extra}]'", file=sys.stderr)
    return 2


def _version(args: argparse.Namespace) -> int:
    print(f"kadence {__version__}")
    return 0


def _crds(args: argparse.Namespace) -> int:
    from .api.crdgen import all_crds, render, write_crds

    if args.write:
        for path in write_crds(Path(args.write)):
            print(path)
        return 0
    print("---\n".join(render(crd) for crd in all_crds()), end="")
    return 0


def _operator(args: argparse.Namespace) -> int:
    from .handlers.main import run_operator

    return run_operator(namespaces=args.namespace, liveness=args.liveness, lease=args.leader_election_lease,
                        lease_namespace=args.leader_election_namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kadence",
        description="Kadence runs the whole machine-learning loop on Kubernetes from declarative YAML.",
    )
    parser.add_argument("--version", action="version", version=f"kadence {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    version = subparsers.add_parser("version", help="Print the version.", description="Print the version.")
    version.set_defaults(handler=_version)

    crds = subparsers.add_parser(
        "crds",
        help="Print the CustomResourceDefinitions (pipe into `kubectl apply -f -`).",
        description="Print the six CustomResourceDefinitions as one YAML stream.",
    )
    crds.add_argument("--write", metavar="DIR", help="Write one file per kind into DIR instead of printing.")
    crds.set_defaults(handler=_crds)

    operator = subparsers.add_parser(
        "operator",
        help="Run the Kadence operator (kopf) against the current kubeconfig.",
        description="Run the Kadence operator against the cluster of the current kubeconfig or in-cluster config.",
    )
    operator.add_argument("--namespace", "-n", action="append", default=[],
                          help="Watch only this namespace (repeatable); all namespaces when omitted.")
    operator.add_argument("--leader-election-lease", metavar="NAME", default=None,
                          help="Run several replicas: only the holder of this coordination.k8s.io Lease "
                               "reconciles, the others stand by and take over when it stops renewing; "
                               "one replica runs alone when omitted.")
    operator.add_argument("--leader-election-namespace", metavar="NAMESPACE", default=None,
                          help="Namespace of the Lease (default: $KADENCE_NAMESPACE, else the pod's own).")
    operator.add_argument("--liveness", metavar="URL", default=None,
                          help="Serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz.")
    operator.set_defaults(handler=_operator)

    for name, help_text in WORKLOADS.items():
        _add_pluggable(subparsers, name, help_text, f"kadence.workloads.{name}")
    for name, help_text in TOOLS.items():
        _add_pluggable(subparsers, name, help_text, f"kadence.commands.{name}")

    try:
        from .sandbox.cli import register as register_sandbox
    except ModuleNotFoundError as error:
        if not error.name or error.name.startswith("kadence"):
            raise
        sandbox = subparsers.add_parser("sandbox", help="The local sandbox (needs kadence[sandbox]).")
        sandbox.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        sandbox.set_defaults(handler=lambda args, _module=error.name: _needs_extra("sandbox", _module))
    else:
        register_sandbox(subparsers)
    return parser


def _first_missing(modules: tuple[str, ...]) -> str | None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    missing = _first_missing(REQUIRES.get(args.command, ()))
    if missing is not None:
        return _needs_extra(args.command, missing)
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
