"""`kadence console` as a command: its options, and a clear line when there is no cluster to read."""

from __future__ import annotations

import subprocess
import sys


def kadence(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kadence", *args], capture_output=True, text=True, timeout=60)


def test_the_help_names_the_options_of_the_issue():
    result = kadence("console", "--help")
    assert result.returncode == 0
    for option in ("--port", "--no-browser", "--enable-writes", "--namespace", "--all-namespaces", "--s3-endpoint"):
        assert option in result.stdout


def test_without_a_kubeconfig_it_says_so_and_exits_1(tmp_path):
    result = kadence("console", "--no-browser", "--kubeconfig", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.startswith("kadence console: ") and "kube-config" in result.stderr.lower()


def test_one_namespace_or_all_not_both():
    result = kadence("console", "-n", "a", "-A")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
