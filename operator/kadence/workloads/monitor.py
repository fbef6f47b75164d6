"""`kadence monitor`: evaluate a MonitorPolicy over one window of predictions (runs in the
monitor Job). Reads prediction logs and feedback from object storage, computes drift and
quality, writes report.json, report.html and result.json under
`monitoring/<namespace>/<policy>/<stamp>/`, and prints the result as the last line.

Exit codes: 0 evaluated (also when breached, or when it could not judge and says why);
2 the task could not run.
"""

from __future__ import annotations

import argparse
import sys

TASK_ENV = "KADENCE_TASK"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="FILE",
                        help=f"The monitor task as a JSON file (default: the JSON in ${TASK_ENV}).")


def run(args: argparse.Namespace) -> int:
    from .monitor_run import run_from_args

    return run_from_args(args, TASK_ENV, sys.stdout)
