"""A migrate whose target disk fills says so in one line, and the same command resumes once there is room.

chromadb's own words for a full disk are "Error in compaction: Error purging logs" (1.5.9, measured on
a 3 MiB tmpfs): nothing a user reads as "the disk is full". The disk is a real tmpfs (mount needs
root; skipped with the reason elsewhere), the store one written by a real release.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.engine.client import Release

from .conftest import run_cli
from .trust import small_tmpfs


@pytest.fixture
def small_disk(tmp_path) -> Path:
    with small_tmpfs(tmp_path / "small-disk", "3m") as mnt:
        yield mnt


def test_a_target_disk_that_fills_is_one_line_naming_it(tmp_path, small_disk):
    with Release("1.5.9") as release:
        source = stores.sample(release, tmp_path / "source", records=3000, dim=64)
    done = run_cli("migrate", str(source), str(small_disk / "target"))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("chroma-compat: error")]
    assert "the target's disk is full" in line and str(small_disk / "target") in line
    assert "rerun the same command" in line and len(line) < 400 and "Traceback" not in done.stderr
