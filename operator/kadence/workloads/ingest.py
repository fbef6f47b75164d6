"""`kadence ingest`: fetch a Dataset's source, validate it, profile it and store an
immutable snapshot under its content-derived version (runs inside the ingest Job).

Exit codes: 0 the data is valid (snapshot written, or already there); 3 a rule failed
(nothing written but the result); 2 the task could not run. The result JSON goes to the
task's result key and is printed as the last line of the output.
"""

from __future__ import annotations

import argparse
import sys

TASK_ENV = "KADENCE_TASK"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 the data is valid (snapshot written or already there); 3 a rule failed; "
                     "2 the task could not run. The result JSON is the last line of the output.")
    parser.add_argument("--task", metavar="FILE",
                        help=f"The ingest task as a JSON file (default: the JSON in ${TASK_ENV}).")
    parser.add_argument("--source", metavar="URI",
                        help="Ingest this source (s3://…, http(s)://…, file:///…) instead of the task's.")
    parser.add_argument("--no-store", action="store_true",
                        help="Validate and profile only; write nothing to object storage (needs no S3 settings "
                             "for file/http/inline sources).")
    parser.add_argument("--output", metavar="DIR",
                        help="Also copy the snapshot files (data.parquet, profile.json, manifest.json) into DIR.")


def run(args: argparse.Namespace) -> int:
    from .ingest_run import run_from_args

    return run_from_args(args, TASK_ENV, sys.stdout)
