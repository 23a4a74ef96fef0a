"""Where the harness keeps its environments, locks and scratch space.

One root, from the platform's user cache dir, overridable with
``CHROMA_COMPAT_HOME`` so CI and tests can point it anywhere.
"""

from __future__ import annotations

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
    from .errors import WorkDirUnusable

    if path.exists() and not path.is_dir():
        raise WorkDirUnusable(f"cannot write to {what} {path}: it is not a directory; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}-{threading.get_ident()}"  # threads probe at once
        with open(probe, "wb") as fh:
            fh.write(b"x")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise WorkDirUnusable(f"cannot write to {what} {path}: {why}; {fix}") from None
    return path


_CHECKED: set[Path] = set()


def _sub(name: str) -> Path:
    path = home() / name
    if path not in _CHECKED or not path.is_dir():  # probed once while it stays: a warm `env ensure` is a few stats
        writable_dir(path, "the cache directory", "set CHROMA_COMPAT_HOME to a writable directory")
        _CHECKED.add(path)
    return path


def envs_dir() -> Path:
    return _sub("envs")


def locks_dir() -> Path:
    return _sub("locks")


def scratch_dir() -> Path:
    """Per-worker HOME, XDG dirs and cwd live here, never in the user's own."""
    return _sub("scratch")


def stores_dir() -> Path:
    return _sub("stores")


def fast_scratch_dir() -> Path:
    """Where the round trip's throwaway stores go: a RAM-backed tmpfs when there is one.

    Every fresh store runs a release's schema migrations, each an fsync on a
    real disk; measured, opening a fresh 0.4.24 store took 0.1-3 s on a busy
    disk and ~20 ms on tmpfs. ``CHROMA_COMPAT_SCRATCH`` names another place to hold that folder.
    """
    import os

    chosen = os.environ.get("CHROMA_COMPAT_SCRATCH")
    if chosen:  # a folder of our own inside it: `env prune` sweeps this folder, never the user's (/tmp, say)
        path = Path(chosen) / f"{APP}-{os.getuid()}"
    elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = Path("/dev/shm") / f"{APP}-{os.getuid()}"
    else:
        return scratch_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
