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
- One registry (``REGISTRY``) of every kind of entry any command creates under
  the cache: its prefix, where the owner's pid sits in the name, which folders
  it lives in, and who makes it. A command names a new entry with
  :func:`prefix` (``migrate-<pid>-``), so nothing it makes is outside what
  ``env prune`` owns. Kept copies (``validate --keep``) are gone only on an
  explicit ``env prune``, never in the quiet sweep a ``validate`` starts with.
  Entries an older harness named without a pid go on an explicit prune once
  untouched for ``LEGACY_AGE`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRATCH, VALIDATE, FAST, CACHE = "scratch", "scratch/validate", "fast scratch", "cache folders"
RUNS = "runs/<project-id>"  # kept runs: pruned by age (run_history.prune), never by the pid sweep
TRANSFERS = "scratch/transfers"  # migrate's journals (kept: they resume) and its per-target locks


@dataclass(frozen=True)
class Kind:
    """One kind of entry the tool creates under its cache."""

    prefix: str  # what :func:`prefix` starts its names with
    pattern: re.Pattern[str]  # group 1: the owner's pid (absent in a legacy name)
    made_by: str
    where: tuple[str, ...] = (SCRATCH,)
    automatic: bool = True  # any command's quiet sweep may remove a dead owner's; False: `env prune` only
    legacy: re.Pattern[str] | None = None  # the same entry as an older harness named it, without a pid
    self_locked: bool = False  # a lock file with no pid in its name: stale when nobody holds its flock


def _kind(prefix: str, pattern: str, made_by: str, **kw: Any) -> Kind:
    legacy = kw.pop("legacy", None)
    return Kind(prefix, re.compile(pattern), made_by, legacy=re.compile(legacy) if legacy else None, **kw)


#: Every kind of entry the tool creates under its cache. The mkdtemp suffix has no "-".
REGISTRY: tuple[Kind, ...] = (
    _kind(
        "validate",
        r"^validate-(\d+)-[A-Za-z0-9_]+$",
        "validate's private copies (snapshot/validate.py)",
        where=(VALIDATE, SCRATCH),
    ),
    _kind(
        "validate-kept",
        r"^validate-kept-(\d+)-[A-Za-z0-9_]+$",
        "a copy `validate --keep` kept",
        where=(VALIDATE, SCRATCH),
        automatic=False,
        legacy=r"^validate-kept-[A-Za-z0-9_]+$",
    ),
    _kind(
        "server",
        r"^server-[^-]+-(\d+)-[0-9a-f]{8}$",
        "a release's server (servers/launcher.py, contracts/server_probes.py)",
    ),
    _kind("pair", r"^pair-(\d+)-", "the round trip's stores (roundtrip/pair.py)", where=(FAST, SCRATCH)),
    _kind("import-check", r"^import-check-(\d+)-[A-Za-z0-9_]+$", "an environment's import check (engine/envs.py)"),
    _kind(
        "worker", r"^[0-9][^-]*-(\d+)-[0-9a-f]{8}$", "a worker's HOME and cwd: <version>-<pid>-<hex> (engine/client.py)"
    ),
    _kind(
        "migrate",
        r"^migrate-(\d+)-[A-Za-z0-9_]+$",
        "migrate's private copy of a source store (transfer/move.py)",
        legacy=r"^migrate-[a-z0-9_]{8}$",
    ),
    _kind(
        "run",
        r"^run-(\d+)-",
        "a `run`/`bisect` command's scratch (usercode/runs.py)",
        legacy=r"^run-[0-9][^-]*-[a-z0-9_]{8}$",
    ),
    _kind(
        "installer",
        r"^installer-(\d+)-[A-Za-z0-9_]+$",
        "an installer's TMPDIR (engine/envs.py)",
        legacy=r"^installer-[a-z0-9_]{8}$",
    ),
    _kind(
        "sweep",
        r"^sweep-(\d+)-[A-Za-z0-9_]+$",
        "the pin sweep's store (contracts/sweep.py)",
        legacy=r"^sweep-[a-z0-9_]{8}$",
    ),
    # a fixed name per target (transfer/lock.py), so no pid in it: owned while a process holds its flock
    _kind(
        "transfer-lock",
        r"^[0-9a-f]{16}\.lock$",
        "a migrate's lock on its target (transfer/lock.py)",
        where=(TRANSFERS,),
        self_locked=True,
    ),
    _kind(
        ".journal",
        r"^\.journal-(\d+)-[A-Za-z0-9_]+$",
        "a migrate journal's write a kill cut short (transfer/journal.py)",
        where=(TRANSFERS,),
    ),
    _kind(
        "write-probe",
        r"^\.write-probe-(\d+)-\d+$",
        "a writability probe (engine/cache_dirs.py); a full disk leaves it",
        where=(CACHE, SCRATCH, VALIDATE, FAST),
    ),
    # named <UTC timestamp>-<pid> (usercode/run_history.py), not by prefix();
    # kept: only `env prune --older-than` removes it
    _kind(
        "run-kept",
        r"^\d{8}T\d{6}\.\d{3}Z-(\d+)$",
        "a kept run's logs: runs/<project-id>/ (usercode/run_history.py)",
        where=(RUNS,),
        automatic=False,
    ),
)
_BY_PREFIX = {k.prefix: k for k in REGISTRY}
#: names an older harness gave without a pid: removed by an explicit prune once untouched this long
LEGACY_AGE = 86400.0
#: kept for callers and tests that read the patterns alone
OWNED_NAMES: tuple[re.Pattern[str], ...] = tuple(k.pattern for k in REGISTRY)
_PID_MAX = 2**22  # Linux's ceiling; a larger number is not a pid we wrote


def prefix(kind: str) -> str:
    """The name prefix a command gives a new entry of ``kind``: ``migrate-<pid>-``. Unregistered kinds
    are refused, so a new kind of entry cannot be created without `env prune` owning it."""
    if kind not in _BY_PREFIX:
        raise KeyError(f"{kind!r} is not in leftovers.REGISTRY: register it before creating entries")
    return f"{kind}-{os.getpid()}-"


def kind_of(name: str) -> Kind | None:
    for kind in REGISTRY:
        if kind.pattern.match(name) or (kind.legacy is not None and kind.legacy.match(name)):
            return kind
    return None


def owner(name: str) -> int | None:
    """The pid that owns a scratch entry, or None when its name does not say."""
    for pattern in OWNED_NAMES:
        m = pattern.match(name)
        if m and pattern.groups:
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


def stale(root: Path, everything: bool = False, where: str | None = None) -> list[Path]:
    """Entries of ``root`` whose owner is gone (dead pid, and no live holder of its lock).

    ``everything`` (an explicit ``env prune``) also takes kept copies of dead owners and legacy
    names untouched for ``LEGACY_AGE``; ``where`` limits the kinds to those that live there."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    out = []
    for name in names:
        kind = kind_of(name)
        if kind is None or (where is not None and where not in kind.where) or not (kind.automatic or everything):
            continue
        if kind.self_locked:
            if not _flocked(root / name):
                out.append(root / name)
            continue
        if held(root / name):
            continue
        pid = owner(name)
        if pid is not None:
            if pid != os.getpid() and not alive(pid):
                out.append(root / name)
        elif everything and kind.legacy is not None and kind.legacy.match(name) and _untouched(root / name):
            out.append(root / name)
    return out


def _flocked(path: Path, keep: bool = False) -> Any:
    """Whether some process holds ``path``'s own flock (a self-locked kind). With ``keep``, a free
    lock is taken and its descriptor returned (None when held), to remove the file under it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False if not keep else None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return True if not keep else None
    if keep:
        return fd
    os.close(fd)
    return False


def _untouched(path: Path) -> bool:
    try:
        return time.time() - path.lstat().st_mtime > LEGACY_AGE
    except OSError:
        return False


def size_of(path: Path) -> int:
    """Bytes ``path`` holds, links not followed, each hard-linked file once: what removing it frees."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, _dirs, files in os.walk(path):  # never follows a link; an unreadable folder is skipped
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def remove(path: Path) -> str | None:
    """Remove one entry without following links; None when it is gone, else why it is not."""
    errors: list[str] = []

    def note(_fn: object, failed: str, exc_info: tuple) -> None:
        exc = exc_info[1]
        errors.append(f"{getattr(exc, 'strerror', None) or exc} ({failed})")

    kind = kind_of(path.name)
    # a lock file is unlinked while we hold its lock: a migrate starting now sees the inode change
    # (transfer/lock.py) and never shares one; a link standing there is unlinked below, never followed
    if kind is not None and kind.self_locked and path.is_file() and not path.is_symlink():
        fd = _flocked(path, keep=True)
        if fd is None:
            return "in use (a live process holds its lock)" if os.path.lexists(path) else None
        try:
            if os.fstat(fd).st_ino == os.lstat(path).st_ino:
                path.unlink()
        except OSError as exc:
            errors.append(exc.strerror or str(exc))
        finally:
            os.close(fd)
        return None if not os.path.lexists(path) else (errors[0] if errors else "replaced while removed")
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


def sweep(
    roots: list[Path] | dict[Path, str], everything: bool = False, sizes: dict[str, int] | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    """Remove the stale entries of every root: (removed, [(kept path, why)]). ``roots`` from
    :func:`cache_roots` say which kinds live in each; ``sizes`` gets the bytes each removal freed."""
    removed: list[str] = []
    failed: list[tuple[str, str]] = []
    placed = roots if isinstance(roots, dict) else dict.fromkeys(roots)
    for root, where in placed.items():
        for path in stale(root, everything, where):
            freed = size_of(path) if sizes is not None else 0
            why = remove(path)
            if why is None:
                removed.append(str(path))
                if sizes is not None:
                    sizes[str(path)] = freed
            else:
                failed.append((str(path), why))
    return removed, failed


def cache_roots(create: bool = True) -> dict[Path, str]:
    """Where the harness leaves entries, and which registry folder each is: the cache's scratch,
    validate's copies, the fast scratch, and the cache's own folders (write probes).

    Nothing is created or written to find them (a full disk must not stop the sweep that frees it);
    ``create`` is kept for callers that passed it, and changes nothing.
    """
    from pytest_chroma_compat.engine import cache_dirs

    home = cache_dirs.home()
    scratch = cache_dirs.scratch_root()
    roots = [
        (scratch, SCRATCH),
        (scratch / "validate", VALIDATE),
        (cache_dirs.fast_scratch_dir(create=False), FAST),
        (scratch / "transfers", TRANSFERS),
    ]
    roots += [(home / sub, CACHE) for sub in ("envs", "locks", "stores", "projects")] + [(home, CACHE)]
    unique: dict[Path, str] = {}
    for root, where in roots:
        if root.is_dir() and not root.is_symlink() and root not in unique:
            unique[root] = where
    return unique


def describe(path: Path) -> str:
    """What a registry entry is, for `env prune`'s lines: "migrate's private copy ... (pid 123, 2 h old)"."""
    kind = kind_of(path.name)
    pid = owner(path.name)
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        age = 0.0
    when = f"{age / 3600:.0f} h" if age >= 3600 else f"{age / 60:.0f} min"
    return f"{kind.made_by if kind else 'unknown'} ({f'pid {pid}, ' if pid else ''}{when} old)"
