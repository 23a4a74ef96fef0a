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
