"""One ``migrate`` per target at a time: an advisory lock named for the target, taken before anything.

Why: two runs into the same target both see its collections missing, both create them, and the
second dies inside the release (exit 3, ``UniqueConstraintError``), or, worse, both upsert into
one collection and each journal believes it owns it. Why ``flock`` on a file in our cache: the
kernel drops it when the process dies (``kill -9`` included), so a killed run never leaves a
stale lock behind and the same command resumes at once; nothing is written into the target.
The file holds the holder's pid, so the refusal can name it, and is removed on release: a run that
locked a file since unlinked (it opened it just before) sees the inode differ and locks afresh.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pytest_chroma_compat.engine import cache_dirs
from pytest_chroma_compat.transfer.endpoints import TransferError


def location(target: str) -> Path:
    key = hashlib.sha256(target.encode()).hexdigest()[:16]
    return cache_dirs.scratch_dir() / "transfers" / f"{key}.lock"


def hold(target: str, label: str) -> int:
    """The descriptor holding the lock on ``target`` (an identity: a resolved path or host:port);
    give it to :func:`release`. Another live run's lock is a one-line refusal (exit 2)."""
    import fcntl

    path = location(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not _same_file(path, fd):  # `env prune` removed a dead run's lock under its flock: lock anew
                os.close(fd)
                continue
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise TransferError(
                f"another migrate (pid {holder}) is writing to {label}; wait for it to finish, or "
                "stop it and run the same command again to resume its work"
            ) from None
        if _same_file(path, fd):
            break
        os.close(fd)  # the holder before us removed it as we opened it: lock the file that is there now
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def release(target: str, fd: int) -> None:
    """Remove the lock file, then let go of it (in that order: see :func:`hold`)."""
    try:
        location(target).unlink(missing_ok=True)
    finally:
        os.close(fd)
