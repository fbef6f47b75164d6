"""`kadence demo`'s command line: what it accepts and how it refuses the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from kadence.cli import build_parser


def parse(*args: str):
    return build_parser().parse_args(["demo", *args])


def test_the_defaults_are_ten_months_at_thirty_seconds_into_kadence_demo():
    args = parse()
    assert (args.months, args.interval, args.seed, args.output_dir, args.keep_running, args.timeout) == (
        10, 30, 7, Path("kadence-demo"), False, 1200)


@pytest.mark.parametrize(("given", "seconds"), [("20s", 20), ("1m", 60), ("90s", 90), ("1h30m", 5400)])
def test_an_interval_is_an_api_duration(given, seconds):
    assert parse("--interval", given).interval == seconds


@pytest.mark.parametrize(("args", "says"), [
    (("--months", "3"), "at least 4 months"),
    (("--months", "many"), "invalid literal"),
    (("--interval", "0s"), "a duration such as 30s"),
    (("--interval", "500ms"), "a duration such as 30s"),
    (("--interval", "30"), "a duration such as 30s"),
    (("--timeout", "10"), "a duration such as 30s"),
])
def test_bad_arguments_are_refused_with_what_was_expected(args, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*args)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err
