"""`kadence materialize`: fit a FeatureSet's compiled transformer on a dataset snapshot and
store the feature table, the transformer (skops) and their profile (runs inside a Job).

Exit codes: 0 materialized (or already there); 3 a feature definition was refused; 2 the
task could not run. The result JSON goes to the task's result key and is printed last.
"""

from __future__ import annotations

import argparse
import sys

TASK_ENV = "KADENCE_TASK"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 materialized (or already there); 3 a feature definition was refused; "
                     "2 the task could not run. The result JSON is the last line of the output.")
    parser.add_argument("--task", metavar="FILE",
                        help=f"The materialize task as a JSON file (default: the JSON in ${TASK_ENV}).")


def run(args: argparse.Namespace) -> int:
    from .materialize_run import run_from_args

    return run_from_args(args, TASK_ENV, sys.stdout)
