"""`kadence demo` from a regular (non-editable) install, outside any checkout (issue 15's
acceptance): the wheel carries the demo's manifests, so its first steps run from any folder.

The wheel is built from a copy of the sources (a build in the working tree would leave build/
and egg-info behind) and installed with pip, offline and without dependencies, into a fresh
virtual environment; the dependencies are this environment's, seen through a .pth file added
after the install (installing kadence[all] again would take minutes and a network). Kadence
itself comes only from the wheel: the test checks where it is imported from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
HERE_BIN = Path(sys.executable).parent  # kubectl and weed of this environment (pip packages of kadence[all])


SETUPTOOLS_NEEDED = 77  # pyproject.toml's build-system (a license expression)


def _setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0
    return int(setuptools.__version__.split(".")[0])


def run(*args, cwd=None, env=None) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's bin, environment for its commands, a folder outside the checkout)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO / "operator", source / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    # Offline with this environment's setuptools when it is recent enough for pyproject.toml's
    # build-system; otherwise pip fetches it from the registry this machine's pip is set up with.
    offline = ["--no-build-isolation", "--no-index"] if _setuptools_major() >= SETUPTOOLS_NEEDED else []
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--quiet", "--wheel-dir", root / "wheels",
        source)
    wheel = next((root / "wheels").glob("kadence-*.whl"))
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
        "--quiet", wheel)
    purelib = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                   .strip())
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = root / "elsewhere"
    outside.mkdir()
    env = {"PATH": f"{venv / 'bin'}:{HERE_BIN}:/usr/bin:/bin", "HOME": str(root), "PYTHONNOUSERSITE": "1",
           "LANG": os.environ.get("LANG", "C.UTF-8")}
    return venv / "bin", env, outside, purelib


def test_the_wheel_ships_the_demos_manifests_and_kadence_is_imported_from_it(installed):
    bin_dir, env, outside, purelib = installed
    manifests = sorted(p.name for p in (purelib / "kadence" / "demo" / "manifests").glob("*.yaml"))
    assert manifests == sorted(p.name for p in (REPO / "examples" / "demo").glob("*.yaml"))
    where = run(bin_dir / "python", "-c", "import kadence; print(kadence.__file__)", cwd=outside, env=env)
    assert where.strip().startswith(str(purelib)), where


def test_kadence_demo_from_the_installed_package_checks_its_manifests_and_tools_from_another_folder(installed):
    bin_dir, env, outside, purelib = installed
    state = outside / "state"
    out = run(bin_dir / "kadence", "demo", "--dry-run", "--state-dir", state, cwd=outside, env=env)
    assert f"manifests: {purelib / 'kadence' / 'demo' / 'manifests'}" in out
    assert "MonitorPolicy/customers-quality" in out and "nothing was started" in out
    assert f"kubectl: {HERE_BIN / 'kubectl'}" in out


def test_the_sandbox_starts_from_the_installed_package_and_takes_the_demos_manifests(installed):
    """The demo's first steps for real: the sandbox (its API server, node and operator run by the
    installed package), then the packaged manifests applied with kubectl, server-side dry run."""
    bin_dir, env, outside, purelib = installed
    state = outside / "sandbox"
    try:
        run(bin_dir / "kadence", "sandbox", "up", "--detach", "--port", "0", "--state-dir", state, cwd=outside, env=env)
        kube = {**env, "KUBECONFIG": str(state / "kubeconfig")}
        run(HERE_BIN / "kubectl", "create", "namespace", "kadence-demo", cwd=outside, env=kube)
        applied = run(HERE_BIN / "kubectl", "apply", "-n", "kadence-demo", "--dry-run=server", "-f",
                      purelib / "kadence" / "demo" / "manifests", cwd=outside, env=kube)
        for kind in ("dataset", "featureset", "trainingrun", "inferenceservice", "monitorpolicy"):
            assert f"{kind}.kadence.dev/" in applied, applied
    finally:
        subprocess.run([bin_dir / "kadence", "sandbox", "down", "--state-dir", state], cwd=outside, env=env,
                       capture_output=True, timeout=120)
