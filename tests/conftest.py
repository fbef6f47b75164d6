import os
import sys
from pathlib import Path

import pytest

from kadence.storage import ObjectStore, StorageConfig

from .status_contract import install as install_status_contract

# Every planner call in every test checks the status it writes against the CRD (tests/status_contract.py).
install_status_contract()

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The longest test files, longest first. With the suite on two workers one file at a time
# (pyproject's addopts), each worker starts on one of them at once and the short files fill in
# around them; otherwise the longest file could start last and the suite wait for it alone.
LONGEST_FIRST = (
    "tests/sandbox/test_demo_loop.py",
    "tests/faults/test_s3_outage.py",
    "tests/faults/test_operator_crash.py",
)


# Everything here runs against a sandbox (API server, kubelet, S3): marked `sandbox`, so that
# `-m "not sandbox"` is the fast lane whether or not a module says so itself.
SANDBOX_DIRECTORIES = ("tests/sandbox/", "tests/faults/")


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order
    for item in items:
        if item.nodeid.startswith(SANDBOX_DIRECTORIES):
            item.add_marker(pytest.mark.sandbox)


@pytest.fixture(scope="session")
def s3_settings(tmp_path_factory):
    """One SeaweedFS S3 server per test session, with credentials and the `kadence` bucket,
    started as `kadence sandbox up` starts it (a `kadence.sandbox.s3.S3Settings`)."""
    from kadence.sandbox import s3, supervisor  # the sandbox extra, only where S3 is used

    s3.find_weed()  # fails with how to install it when the sandbox extra is missing
    state_dir = tmp_path_factory.mktemp("s3")
    settings = s3.load_or_create_settings(state_dir)
    record = s3.start(state_dir, settings, die_with_parent=True)
    yield settings
    proc = record.process()
    if proc is not None:
        supervisor.stop_processes([proc], timeout=s3.STOP_GRACE_SECONDS)


@pytest.fixture(scope="session")
def s3_config(s3_settings) -> StorageConfig:
    return s3_settings.storage_config()


@pytest.fixture(scope="session")
def store(s3_config) -> ObjectStore:
    return ObjectStore(s3_config)


@pytest.fixture
def s3_env(s3_config, monkeypatch) -> dict[str, str]:
    """The KADENCE_S3_* settings, set in this process and returned with the rest of its environment."""
    for key, value in s3_config.as_env().items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **s3_config.as_env()}
