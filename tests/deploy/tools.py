"""Run the external tools the deploy tests need (promtool, hadolint); `.ci/run` installs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0


def tool(name: str) -> str:
    """Return the path of `name` on PATH or beside this Python; fail (never skip) when missing."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run .ci/run, or apt-get install prometheus (promtool)"
    return found


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), capturing its output as text."""
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `scripts/<name>` with this Python."""
    return run(sys.executable, str(ROOT / "scripts" / name), *args)
