"""`kadence track`: register a ModelVersion in MLflow's model registry and mirror its stage in
force as an alias (`champion` for Production, `challenger` for Staging); runs in a small Job the
ModelVersion's planner creates for each stage it takes (planners.mlflow_sync).

The task (tracking.model.AliasSyncTask) comes from `--task FILE` or $KADENCE_TASK. Prints one JSON
line: what was registered and which aliases were set or deleted.

Exit codes: 0 in sync; 1 MLflow could not be reached or failed (the Job's backoffLimit tries
again); 3 MLflow refused (the run or its model does not exist) or the image has no MLflow client:
retrying cannot help; 2 bad task.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..settings import Settings
from ..tracking.mlflow_log import HTTP_ENV, refused
from ..tracking.model import AliasSyncTask
from .task_file import load_task

EXIT_SYNCED, EXIT_FAILED, EXIT_BAD_TASK, EXIT_REFUSED = 0, 1, 2, 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE", help="The sync task as a JSON file (default: $KADENCE_TASK).")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    try:
        task = load_task(args.task, Settings.from_env(env), AliasSyncTask)
    except (OSError, ValueError) as error:
        print(json.dumps({"synced": False, "message": f"bad task: {error}"}), flush=True)
        return EXIT_BAD_TASK
    for name, value in HTTP_ENV.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:
        print(json.dumps({"synced": False, "message": "the mlflow client is not installed in the workload image "
                                                      "(pip install 'kadence[mlflow]')"}), flush=True)
        return EXIT_REFUSED

    from ..tracking.registry_sync import sync

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        outcome = sync(task, log)
    except MlflowException as error:
        print(json.dumps({"synced": False, "message": f"{error.error_code}: {error.message}"[:2000]}), flush=True)
        return EXIT_REFUSED if refused(error) else EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - connection errors of every kind: the Job retries
        print(json.dumps({"synced": False, "message": f"{type(error).__name__}: {error}"[:2000]}), flush=True)
        return EXIT_FAILED
    print(json.dumps({"synced": True, **outcome}, sort_keys=True), flush=True)
    return EXIT_SYNCED
