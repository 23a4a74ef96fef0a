"""The repository keeps its style: `ruff check` and `ruff format --check` over it, as configured in
pyproject.toml ([tool.ruff]); the same commands as `nox -s lint`, which also runs mypy (slower, so not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command):
    # ruff comes with the test extra; a missing ruff fails here ("No module named ruff"), it is not skipped
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"ruff {' '.join(command)} found problems (`ruff format . && ruff check --fix .` fixes most):\n"
        f"{done.stdout}{done.stderr}"
    )
