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
    assert (args.label_delay, args.dry_run, args.manifests) == (0, False, None)


@pytest.mark.parametrize(("given", "months"), [("0", 0), ("1", 1), ("3", 3)])
def test_a_label_delay_is_a_number_of_months(given, months):
    assert parse("--label-delay", given).label_delay == months


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
    (("--label-delay", "4"), "a number of months from 0 to 3"),
    (("--label-delay", "-1"), "a number of months from 0 to 3"),
    (("--label-delay", "one"), "a number of months from 0 to 3"),
])
def test_bad_arguments_are_refused_with_what_was_expected(args, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*args)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_a_dry_run_lists_the_shipped_manifests_and_the_delayed_traffic_and_starts_nothing(tmp_path, capsys):
    from kadence.cli import main

    state = tmp_path / "state"
    code = main(["demo", "--dry-run", "--label-delay", "1", "--months", "12", "--state-dir", str(state)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MonitorPolicy/customers-quality" in out and "kadence/demo/manifests" in out
    assert "sent 1 month(s) later" in out and "12 months" in out
    assert f"a new one in {state}" in out
    assert not state.exists(), "a dry run starts nothing"


def test_a_dry_run_with_manifests_that_are_not_there_exits_one_and_says_where_it_looked(tmp_path, capsys):
    from kadence.cli import main

    assert main(["demo", "--dry-run", "--manifests", str(tmp_path / "none")]) == 1
    assert f"the demo's manifests are not at {tmp_path / 'none'}" in capsys.readouterr().err
