"""`kadence train`: run a TrainingRun's AutoML search in a Job.

The task spec (see `train_task.TrainTask`) comes from `--task FILE` or the
KADENCE_TASK environment variable (JSON); object storage from the KADENCE_S3_*
variables. The Job logs one line per trial and prints the result JSON as its last
line; the same result is written to `runs/<ns>/<run>/result.json`.

Exit codes: 0 success; 3 when the spec and the data cannot give a model (a missing
target, a family that does not fit the task, no trial completing …: retrying cannot
help); 2 for a bad task spec or trouble with object storage. A failure's cause is the
stderr line starting with "kadence train: failed: ".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE",
                        help="Task spec as a JSON file (default: the KADENCE_TASK environment variable).")
    parser.add_argument("--output-prefix", metavar="KEY",
                        help="Write under this S3 key prefix instead of runs/<namespace>/<run>/.")


def read_task_text(args: argparse.Namespace, env: dict[str, str] | None = None) -> str:
    if args.task:
        return Path(args.task).read_text()
    task = Settings.from_env(env).task
    if task:
        return task
    raise ValueError("no task spec: pass --task FILE or set KADENCE_TASK")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .train_task import TrainTask

    from .train_task import EXIT_ERROR, EXIT_INVALID, FAILURE_PREFIX

    try:
        task = TrainTask.model_validate(json.loads(read_task_text(args)))
    except (ValueError, OSError, ValidationError) as error:
        print(f"kadence train: invalid task spec: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.output_prefix:
        task = task.model_copy(update={"output_prefix": args.output_prefix})

    from ..storage import ObjectStore, StorageError
    from .trainer import TrainingError, train

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        store = ObjectStore.from_env()
        result = train(task, store, log=log)
    except TrainingError as error:
        print(FAILURE_PREFIX + str(error), file=sys.stderr, flush=True)
        return EXIT_INVALID
    except (StorageError, OSError) as error:
        print(f"{FAILURE_PREFIX}object storage: {error}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    print(json.dumps(result.wire(), separators=(",", ":")), flush=True)
    return 0
