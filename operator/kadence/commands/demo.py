"""`kadence demo`: the closed loop end to end on the sandbox.

Brings the sandbox up when none runs, applies the demo's manifests (shipped in the package;
the same files as examples/demo/ of the repository) with kubectl, waits for the first
model to serve, then sends month after month of seeded customer traffic with its ground truth
while a new customer segment takes over: the model's F1 falls under the MonitorPolicy's 0.55,
the policy retrains on the data plus the labelled feedback, the retrained model wins the
champion/challenger comparison, goes through a canary and is promoted. Ends with
f1_by_month.png, f1_by_month.html and demo.json in --output-dir; exits 0 only when the loop
closed (breach -> one retrain -> promoted) and otherwise names the step that did not happen.
With --label-delay N the ground truth of each month comes back N months later and churn's
rule drifts gradually as well; a month then also stays open while a retrain runs or a canary
goes on (the demo compresses months, not the operator's work). --dry-run checks the manifests and the tools and starts nothing.
Needs kadence[all] (the sandbox, the model server and matplotlib).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _duration(text: str) -> int:
    """Whole seconds of an API duration (30s, 1m, 1h30m), at least one."""
    from ..api.common import parse_duration

    try:
        seconds = parse_duration(text.strip())
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30s, 1m or 1h30m, got {text!r}")
    return int(seconds)


def _months(text: str) -> int:
    from ..demo.scenario import crossing_month

    try:
        months = int(text)
        crossing_month(months)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return months


def _label_delay(text: str) -> int:
    try:
        months = int(text)
    except ValueError:
        months = -1
    if not 0 <= months <= 3:
        raise argparse.ArgumentTypeError(f"expected a number of months from 0 to 3, got {text!r}")
    return months


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[1].replace("\n", " ")
    parser.add_argument("--months", type=_months, default=10, help="Months of traffic (at least 4; default 10).")
    parser.add_argument("--interval", type=_duration, default=30, metavar="DURATION",
                        help="The MonitorPolicy's evaluation interval, e.g. 30s (default); a month lasts about "
                             "one interval plus the model server's 10 s log flush.")
    parser.add_argument("--output-dir", type=Path, default=Path("kadence-demo"), metavar="DIR",
                        help="Where f1_by_month.png, f1_by_month.html and demo.json go (default ./kadence-demo).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the traffic (default 7).")
    parser.add_argument("--keep-running", action="store_true",
                        help="Leave a sandbox the demo started running afterwards (one that ran before always "
                             "keeps running).")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="The sandbox's state directory (default: $KADENCE_SANDBOX_DIR or ~/.kadence/sandbox).")
    parser.add_argument("--manifests", type=Path, default=None, metavar="DIR",
                        help="The demo's manifests (default: the ones shipped in the package, as in examples/demo/).")
    parser.add_argument("--label-delay", type=_label_delay, default=0, metavar="MONTHS",
                        help="Send each month's ground truth this many months after its predictions (0-3; default "
                             "0: moments later); the relationship then drifts gradually too.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Check the manifests and the tools the demo needs, print what it would do, start "
                             "nothing.")
    parser.add_argument("--timeout", type=_duration, default=1200, metavar="DURATION",
                        help="Give up on the month loop after this long, extra months included (default 20m).")


def run(args: argparse.Namespace) -> int:
    from ..demo.loop import DemoError, Settings, dry_run, run_demo

    settings = Settings(months=args.months, interval_s=args.interval, seed=args.seed, output_dir=args.output_dir,
                        keep_running=args.keep_running, state_dir=args.state_dir, manifests=args.manifests,
                        timeout_s=float(args.timeout), label_delay=args.label_delay)
    try:
        return dry_run(settings) if args.dry_run else run_demo(settings)
    except KeyboardInterrupt:
        print("\nkadence demo: interrupted", file=sys.stderr)
        return 130
    except DemoError as error:
        print(f"kadence demo: {error}", file=sys.stderr)
    return 1
