"""Where the harness keeps its environments, locks and scratch space.

One root, from the platform's user cache dir, overridable with
``CHROMA_COMPAT_HOME`` so CI and tests can point it anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "pytest-chroma-compat"


def home() -> Path:
    override = os.environ.get("CHROMA_COMPAT_HOME")
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP)).resolve()


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
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
    disk and ~20 ms on tmpfs. ``CHROMA_COMPAT_SCRATCH`` overrides.
    """
    import os

    chosen = os.environ.get("CHROMA_COMPAT_SCRATCH")
    if chosen:
        path = Path(chosen)
    elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = Path("/dev/shm") / f"{APP}-{os.getuid()}"
    else:
        return scratch_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
