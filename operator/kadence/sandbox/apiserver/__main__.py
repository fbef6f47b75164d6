"""`python -m kadence.sandbox.apiserver --host 127.0.0.1 --port P --state-dir DIR --token-file FILE`"""

from __future__ import annotations

import argparse
import pathlib

from . import run
from .server import SNAPSHOT_INTERVAL


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kadence.sandbox.apiserver",
                                     description="The Kadence sandbox's Kubernetes API server.")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (127.0.0.1, localhost, ::1)")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--state-dir", type=pathlib.Path, required=True,
                        help="where the state snapshot lives (and the kubelet's pod logs)")
    parser.add_argument("--watch-history", type=int, default=None,
                        help="events kept for watches to resume from (default 5000); older "
                             "resourceVersions answer 410 Gone")
    parser.add_argument("--token-file", type=pathlib.Path, required=True,
                        help="the bearer token every request must carry (created, mode 0600, if missing)")
    parser.add_argument("--snapshot-interval", type=float, default=SNAPSHOT_INTERVAL,
                        help=f"seconds between state snapshots (default {SNAPSHOT_INTERVAL}); a crash loses "
                             "at most the writes of the last interval")
    args = parser.parse_args(argv)
    run(args.host, args.port, args.state_dir, args.token_file, args.watch_history, args.snapshot_interval)


if __name__ == "__main__":
    main()
