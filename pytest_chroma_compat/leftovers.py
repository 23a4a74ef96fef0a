"""Scratch space left behind by processes that are gone, and removing exactly that.

Why it is built this way:
- Every scratch entry the harness creates carries the id of the process that
  owns it (``OWNED_NAMES``). An entry whose owner is no longer running was left
  by a killed run and can go; an entry of a live process is never touched, so
  ``env prune`` is safe while other runs share the cache. An entry whose name
  has no owner (an older harness's ``validate-XXXX``, a kept ``validate-kept-``
  copy, anything a user put there) is never removed: we cannot prove it dead.
- A pid that is alive may belong to an unrelated process that reused it: the
  entry is then kept until that process exits, the safe direction. A process
  of another pid namespace sharing the cache (a container) looks dead from
  here; do not share a cache's scratch space across pid namespaces.
- Removal never follows a symlink (a link is unlinked, its target untouched)
  and is checked afterwards: only what is really gone is reported.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

#: Names of scratch entries and where their owner's pid sits. The mkdtemp suffix has no "-".
OWNED_NAMES: tuple[re.Pattern[str], ...] = (
    re.compile(r"^validate-(\d+)-[A-Za-z0-9_]+$"),      # validate's private copies (snapshot/validate.py)
    re.compile(r"^server-[^-]+-(\d+)-[0-9a-f]{8}$"),    # a release's server (contracts/server_probes.py)
    re.compile(r"^pair-(\d+)-"),                        # the round trip's stores (roundtrip.py)
    re.compile(r"^import-check-(\d+)-[A-Za-z0-9_]+$"),  # an environment's import check (envs.py)
    re.compile(r"^[0-9][^-]*-(\d+)-[0-9a-f]{8}$"),      # a worker's HOME and cwd: <version>-<pid>-<hex> (client.py)
)
_PID_MAX = 2**22  # Linux's ceiling; a larger number is not a pid we wrote


def owner(name: str) -> int | None:
    """The pid that owns a scratch entry, or None when its name does not say."""
    for pattern in OWNED_NAMES:
        m = pattern.match(name)
        if m:
            pid = int(m.group(1))
            return pid if 0 < pid <= _PID_MAX else None
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


#: a file each live owner holds an exclusive ``flock`` on, inside its entry. Why beside the pid: a
#: cache shared across pid namespaces (containers on one runner) shows another container's live
#: owner as a dead pid here, but flock is one lock per file for the whole kernel.
LOCK_NAME = ".owner.lock"


def hold(entry: Path) -> Any:
    """Mark ``entry`` as in use for as long as the returned file stays open (close it when done)."""
    fd = os.open(entry / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    handle = os.fdopen(fd, "r+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise
    return handle


def held(entry: Path) -> bool:
    """True while some process, in any pid namespace on this kernel, holds ``entry``'s lock."""
    try:
        fd = os.open(entry / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file (an older entry, a plain file): the pid decides
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def stale(root: Path) -> list[Path]:
    """Entries of ``root`` whose owner is gone (dead pid, and no live holder of its lock)."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    out = []
    for name in names:
        pid = owner(name)
        if pid is not None and pid != os.getpid() and not alive(pid) and not held(root / name):
            out.append(root / name)
    return out


def remove(path: Path) -> str | None:
    """Remove one entry without following links; None when it is gone, else why it is not."""
    errors: list[str] = []

    def note(_fn: object, failed: str, exc_info: tuple) -> None:
        exc = exc_info[1]
        errors.append(f"{getattr(exc, 'strerror', None) or exc} ({failed})")

    try:
        if path.is_dir() and not path.is_symlink():
            if sys.version_info >= (3, 12):
                shutil.rmtree(path, onexc=lambda fn, failed, exc: note(fn, failed, (None, exc, None)))
            else:
                shutil.rmtree(path, onerror=note)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        errors.append(exc.strerror or str(exc))
    if not os.path.lexists(path):
        return None
    return errors[0] if errors else "still there after removal"


def sweep(roots: list[Path]) -> tuple[list[str], list[tuple[str, str]]]:
    """Remove the stale entries of every root: (removed, [(kept path, why)])."""
    removed: list[str] = []
    failed: list[tuple[str, str]] = []
    for root in roots:
        for path in stale(root):
            why = remove(path)
            if why is None:
                removed.append(str(path))
            else:
                failed.append((str(path), why))
    return removed, failed


def cache_roots(create: bool = True) -> list[Path]:
    """Where the harness leaves scratch entries: the cache's scratch, validate's copies, the fast scratch.

    ``create=False`` looks only at what exists (a cheap sweep must not create the cache).
    """
    from . import paths

    if create:
        scratch = paths.scratch_dir()
        roots = [scratch, scratch / "validate", paths.fast_scratch_dir()]
    else:
        scratch = paths.home() / "scratch"
        roots = [scratch, scratch / "validate"]
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and not root.is_symlink() and root not in unique:
            unique.append(root)
    return unique
