"""The kadence command as users run it: a real subprocess of the installed entry point."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kadence import __version__
from kadence.cli import WORKLOADS, build_parser

KADENCE = str(Path(sys.executable).parent / "kadence")


def kadence(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KADENCE, *args], capture_output=True, text=True, timeout=120)


def test_kadence_help_lists_every_subcommand():
    result = kadence("--help")
    assert result.returncode == 0
    for command in ("version", "crds", "operator", "sandbox", *WORKLOADS):
        assert command in result.stdout


def test_kadence_version_prints_the_package_version():
    result = kadence("version")
    assert result.returncode == 0 and result.stdout.strip() == f"kadence {__version__}"


def test_kadence_crds_prints_eight_documents_for_kubectl_apply():
    result = kadence("crds")
    documents = list(yaml.safe_load_all(result.stdout))
    assert result.returncode == 0
    assert [d["kind"] for d in documents] == ["CustomResourceDefinition"] * 8
    assert {d["spec"]["group"] for d in documents} == {"kadence.dev"}


def test_kadence_crds_write_creates_one_file_per_kind(tmp_path):
    result = kadence("crds", "--write", str(tmp_path))
    assert result.returncode == 0
    assert len(list(tmp_path.glob("kadence.dev_*.yaml"))) == 8


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command):
    result = kadence(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: kadence" in result.stdout


def test_an_unknown_subcommand_is_refused_with_the_choices():
    result = kadence("trian")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "train" in result.stderr


def kadence_without(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a process where `module` cannot be imported, as in an install without its extra."""
    code = (f"import sys; sys.modules[{module!r}] = None; from kadence.cli import main; "
            f"sys.exit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["psutil", "celpy", "optuna", "uvicorn", "onnxruntime", "matplotlib"])
def test_the_help_works_without_an_optional_extra(module):
    result = kadence_without(module, "--help")
    assert result.returncode == 0, result.stderr
    assert "sandbox" in result.stdout and "train" in result.stdout


@pytest.mark.parametrize("module,command,extra", [("psutil", "sandbox", "sandbox"), ("uvicorn", "serve", "serve"),
                                                  ("optuna", "train", "train")])
def test_a_command_whose_extra_is_missing_names_the_extra_to_install(module, command, extra):
    result = kadence_without(module, command, *(["up"] if command == "sandbox" else []))
    assert result.returncode == 2
    assert f"kadence[{extra}]" in result.stderr
