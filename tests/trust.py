"""Shared assertions for the fault and hostile-input catalogue (docs/reliability.md).

Every case there is proved the same way: the real command runs as a user (or
an attacker's victim) runs it; it exits with the documented code and exactly
one line on stderr, no traceback; the source hashes the same before and after;
and a *canary* tree outside the work directory, standing where an escape would
land, is byte-for-byte and mtime-for-mtime unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_chroma_compat.snapshot.sources import tree_hash


def cli(
    *args: str, env: dict | None = None, timeout: float = 600, cwd: str | Path | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``chroma-compat ARGS`` in a subprocess, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Exit ``code``, exactly one non-empty line on stderr (no traceback), containing every needle."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == code, detail
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, detail
    assert len(lines) == 1, detail
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}\n{detail}"
    _record(code, lines[0])
    return lines[0]


def _record(code: int, line: str) -> None:
    """With CHROMA_COMPAT_OBSERVED=FILE, note what each case printed: docs/reliability.md quotes it."""
    target = os.environ.get("CHROMA_COMPAT_OBSERVED")
    if target:
        import json

        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": test, "exit": code, "line": line}) + "\n")


class Canary:
    """A tree outside the work directory whose hash must never change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "victim.txt").write_text("must not change\n")
        (root / "chroma.sqlite3").write_bytes(b"not a store, and must not become one")
        sub = root / "other-store"
        sub.mkdir(exist_ok=True)
        (sub / "data_level0.bin").write_bytes(b"\x00" * 64)
        for p in [root, *root.rglob("*")]:
            os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        self.before = tree_hash(root)

    def assert_untouched(self) -> None:
        assert tree_hash(self.root) == self.before, f"something outside the work directory changed: {self.root}"
        names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*"))
        assert names == ["chroma.sqlite3", "other-store", "other-store/data_level0.bin", "victim.txt"], names


@pytest.fixture
def canary(tmp_path) -> Canary:
    return Canary(tmp_path / "canary")


@contextmanager
def readonly_dir(path: Path) -> Iterator[Path]:
    """A directory nobody may write to, root included (CI runs as root, which ignores mode bits):
    a read-only tmpfs when we are root, mode 0555 otherwise."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot make a read-only directory as root here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` (``1m``) at ``path``, for full-disk faults; skipped where mount needs root."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip()[:100]}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
