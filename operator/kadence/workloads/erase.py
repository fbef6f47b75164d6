"""`kadence erase`: erase an ErasureRequest's subject from every store in its scope (runs inside a Job).

Exit codes: 0 erased (or nothing matched); 3 the erasure cannot be done as asked (e.g. no hashing
key for the guard); 2 it failed (storage, a crash) and may be retried. The result JSON goes to the
task's result key and is printed last.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 erased; 3 cannot be done as asked; 2 failed and may be retried. "
                     "The result JSON is the last line of the output.")
    parser.add_argument("--task", metavar="FILE", help="The erasure task as a JSON file (default: $KADENCE_TASK).")


def run(args: argparse.Namespace) -> int:
    from .erase_run import run_from_args

    return run_from_args(args)
