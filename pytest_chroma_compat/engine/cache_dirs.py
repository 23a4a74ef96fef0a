"""Where the harness keeps its environments, locks and scratch space.

One root, from the platform's user cache dir, overridable with
``CHROMA_COMPAT_HOME`` so CI and tests can point it anywhere.

``CHROMA_COMPAT_SCRATCH_HOME`` moves the default cache's ``scratch/`` (private copies, workers'
HOMEs, journals: everything a run makes and removes) elsewhere while its environments stay put:
the test suite shares the built releases (minutes to build) and keeps its scratch private (a
killed test's copies never pile up in the user's cache). A cache named with ``CHROMA_COMPAT_HOME``
keeps its scratch inside it: that variable means "everything here".
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

APP = "pytest-chroma-compat"


def home() -> Path:
    override = os.environ.get("CHROMA_COMPAT_HOME")
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP)).resolve()


def writable_dir(path: Path, what: str, fix: str) -> Path:
    """Create ``path`` if needed and prove it takes a file, or raise one line naming ``fix``.

    Why a probe file rather than ``os.access``: root (CI) passes every access
    check, yet a read-only mount or a full disk still refuses the write.
    """
    from pytest_chroma_compat.common.errors import WorkDirUnusable

    if path.exists() and not path.is_dir():
        raise WorkDirUnusable(f"cannot write to {what} {path}: it is not a directory; {fix}")
    probe = path / f".write-probe-{os.getpid()}-{threading.get_ident()}"  # threads probe at once
    try:
        path.mkdir(parents=True, exist_ok=True)
        try:
            with open(probe, "wb") as fh:
                fh.write(b"x")
        finally:  # a full disk creates the file and refuses its byte: never leave it (engine/leftovers.py owns it too)
            try:
                probe.unlink()
            except OSError:
                pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise WorkDirUnusable(
                f"cannot write to {what} {path}: {why} ({_free(path)} free); free space there or {fix}"
            ) from None
        raise WorkDirUnusable(f"cannot write to {what} {path}: {why}; {fix}") from None
    return path


def _free(path: Path) -> str:
    import shutil

    try:
        free = shutil.disk_usage(path if path.exists() else path.parent).free
    except OSError:
        return "unknown"
    return f"{free} bytes" if free < 2**20 else f"{free / 2**20:.0f} MiB"


_CHECKED: set[Path] = set()


def _sub(name: str) -> Path:
    return _checked(home() / name)


def _checked(path: Path) -> Path:
    if path not in _CHECKED or not path.is_dir():  # probed once while it stays: a warm `env ensure` is a few stats
        writable_dir(path, "the cache directory", "set CHROMA_COMPAT_HOME to a writable directory")
        _CHECKED.add(path)
    return path


def envs_dir() -> Path:
    return _sub("envs")


def locks_dir() -> Path:
    return _sub("locks")


def scratch_root() -> Path:
    """Where scratch/ is, without creating or probing it (a sweep on a full disk must still find it)."""
    override = os.environ.get("CHROMA_COMPAT_SCRATCH_HOME")
    if override and not os.environ.get("CHROMA_COMPAT_HOME"):
        return Path(override).expanduser().resolve()
    return home() / "scratch"


def scratch_dir() -> Path:
    """Per-worker HOME, XDG dirs and cwd live here, never in the user's own."""
    return _checked(scratch_root())


def stores_dir() -> Path:
    return _sub("stores")


def fast_scratch_dir(create: bool = True) -> Path:
    """Where the round trip's throwaway stores go: a RAM-backed tmpfs when there is one.

    Every fresh store runs a release's schema migrations, each an fsync on a
    real disk; measured, opening a fresh 0.4.24 store took 0.1-3 s on a busy
    disk and ~20 ms on tmpfs. ``CHROMA_COMPAT_SCRATCH`` names another place to hold that folder.
    """
    chosen = os.environ.get("CHROMA_COMPAT_SCRATCH")
    if chosen:  # a folder of our own inside it: `env prune` sweeps this folder, never the user's (/tmp, say)
        path = Path(chosen) / f"{APP}-{os.getuid()}"
    elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = Path("/dev/shm") / f"{APP}-{os.getuid()}"
    else:
        return scratch_dir() if create else scratch_root()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
