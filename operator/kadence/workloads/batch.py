"""`kadence batch`: score a table with a registered model for one BatchPrediction run (runs inside a Job).

Exit codes: 0 scored and published; 3 the input or model cannot be scored (retrying cannot help);
2 the run failed (storage, a crash) and may be retried. The result JSON goes to the task's result
key and is printed last.
"""

from __future__ import annotations

import argparse
import sys

TASK_ENV = "KADENCE_TASK"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 scored and published; 3 the input or model cannot be scored; 2 the run "
                     "failed and may be retried. The result JSON is the last line of the output.")
    parser.add_argument("--task", metavar="FILE",
                        help=f"The batch task as a JSON file (default: the JSON in ${TASK_ENV}).")


def run(args: argparse.Namespace) -> int:
    from .batch_run import run_from_args

    return run_from_args(args, TASK_ENV, sys.stdout)
