"""Writing a private copy of an untrusted store: one tree of regular files and directories, within limits.

Everything that materializes a source (archive extraction, directory copy, S3
download) writes through :class:`SafeTree` and counts through :class:`Budget`,
so the guarantees are made in one place, by construction:

- **Nothing but regular files and directories is ever created.** A Chroma
  store holds no links, so no link is ever made on disk; a hard link in an
  archive becomes a byte copy of an earlier member.
- **Every destination is decided lexically** from the member's normalized
  name (:func:`safe_relpath`: no absolute paths, no ``..`` out of the root),
  then reached by walking from the root's file descriptor one component at a
  time with ``O_NOFOLLOW|O_DIRECTORY``, checked with :func:`os.path.realpath`
  to lie inside the root, and created with ``O_CREAT|O_EXCL|O_NOFOLLOW``:
  nothing is overwritten, and nothing is written through anything.
- **Bytes and entries are limited while writing**, counting the bytes
  actually written (declared sizes only ever make a refusal come earlier).

Default byte limit (``--max-extract-bytes`` replaces it):

- the room in the work directory: ``(free - MARGIN) / COPIES``, because
  validate makes a second copy of the store for the target release;
- for an archive, also at most ``max(RATIO * archive size, FLOOR)``. Chroma
  stores compress poorly (float32 vectors, SQLite pages: 1-5x), so 100x is far
  beyond any real store and far below a bomb (deflate reaches ~1000x); FLOOR
  keeps small stores with a high ratio (mostly-empty SQLite files) working.

Default entry limit (``--max-members``): :data:`MAX_MEMBERS`. A store has a
few files per collection; 100,000 entries is about 20,000 collections.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.common.redact import redact

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
#: default byte limit for an archive: this many times its size on disk ...
RATIO = 100
#: ... but never less than this
FLOOR = 512 * MiB
#: free space left untouched in the work directory
MARGIN = 512 * MiB
#: copies of the store validate keeps in the work directory (the reference and the target's)
COPIES = 2
#: default limit on archive members / directory entries / S3 objects
MAX_MEMBERS = 100_000
CHUNK = 1 << 20

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class SourceError(CompatError):
    """The source cannot be materialized; the message is one line, naming what is wrong.

    Every message is redacted (:func:`~.redact.redact`), so credentials written
    into a URL never reach stderr or a report through an error.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(redact(" ".join(str(message).split())))


def one_line(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(" ".join(text.split()))


# ---------------------------------------------------------------- sizes


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"10G"`` -> 10 GiB; K, M, G, T are powers of 1024 (``10GB``/``10GiB`` mean the same); a bare number is bytes."""
    m = _SIZE.match(str(text))
    if m is None:
        raise ValueError(f"not a size: {text!r} (e.g. 500M, 10G, 123456)")
    value = float(m.group(1)) * {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB}[m.group(2).lower()]
    if value < 1:
        raise ValueError(f"a size must be at least 1 byte: {text!r}")
    return int(value)


def human(n: float) -> str:
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def free_space(path: Path) -> int:
    """Bytes available to us in ``path`` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return 0


def byte_limit(workdir: Path, *, explicit: int | None, archive_size: int | None = None) -> tuple[int, str]:
    """The byte limit and why it is what it is (for the refusal message)."""
    if explicit is not None:
        return explicit, "--max-extract-bytes"
    free = free_space(workdir)
    room = max(0, (free - MARGIN) // COPIES)
    why_room = (
        f"only {human(free)} free in {workdir}, under the {human(MARGIN)} kept free"
        if room == 0
        else f"{human(free)} free in {workdir}, less a {human(MARGIN)} margin, shared by up to {COPIES} private copies"
    )
    if archive_size is None:
        return room, why_room
    ratio = max(archive_size * RATIO, FLOOR)
    if ratio <= room:
        return ratio, f"{RATIO}x the archive's {human(archive_size)}, at least {human(FLOOR)}"
    return room, why_room


def limit_reason(why: str) -> str:
    """The end of a refusal: why the limit is what it is, and how to change it."""
    if why == "--max-extract-bytes":
        return "(the limit given with --max-extract-bytes); refusing it"
    return f"({why}); refusing it (free space there; validate's --max-extract-bytes sets the limit)"


class Budget:
    """Bytes written and entries created against their limits; thread-safe (S3 downloads in parallel).

    ``subject`` names what is being copied ("archive /x.tgz", "directory /d"),
    and each refusal is one line ending with the flag that raises the limit.
    """

    def __init__(
        self,
        subject: str,
        *,
        max_bytes: int,
        why_bytes: str,
        max_members: int | None,
        verb: str = "expands to",
        noun: str = "members",
    ) -> None:
        self.subject, self.max_bytes, self.why_bytes = subject, max_bytes, why_bytes
        self.max_members = MAX_MEMBERS if max_members is None else max_members
        self.verb, self.noun = verb, noun
        self.written = 0
        self.declared = 0
        self.members = 0
        self._lock = threading.Lock()

    def too_big(self) -> SourceError:
        return SourceError(
            f"{self.subject} {self.verb} more than {human(self.max_bytes)} {limit_reason(self.why_bytes)}"
        )

    def member(self) -> None:
        """One more entry; refuse past the limit (checked before the entry is read any further)."""
        with self._lock:
            self.members += 1
            if self.members > self.max_members:
                raise SourceError(
                    f"{self.subject} holds more than {self.max_members} {self.noun}; refusing it "
                    "(--max-members sets the limit)"
                )

    def declare(self, size: int) -> None:
        """A declared size: never trusted to *accept*, only to refuse before any byte is written."""
        with self._lock:
            self.declared += max(0, int(size))
            if self.declared > self.max_bytes:
                raise self.too_big()

    def take(self, n: int) -> None:
        """``n`` more bytes are about to be written: refuse first if they would cross the limit."""
        with self._lock:
            if self.written + n > self.max_bytes:
                raise self.too_big()
            self.written += n

    def give_back(self, n: int) -> None:
        """A retried download rewrites its file: its bytes no longer count."""
        with self._lock:
            self.written -= n


# ---------------------------------------------------------------- names


def _is_absolute(name: str) -> bool:
    return name.startswith("/") or (len(name) > 1 and name[1] == ":")


def safe_relpath(name: str, *, label: str, what: str = "member") -> str:
    """The normalized relative path of an archive member or S3 key, or SourceError.

    Absolute paths, drive letters and ``..`` that climb out of the root are
    refused; ``a/../b`` is ``b``. ``""`` means the root itself.
    """
    clean = name.replace("\\", "/")
    if "\0" in clean:
        raise SourceError(f"unsafe {what} {name!r} in {label}: NUL in the name")
    if _is_absolute(clean):
        raise SourceError(f"unsafe {what} {name!r} in {label}: absolute path")
    norm = posixpath.normpath(clean)
    if norm == ".." or norm.startswith("../"):
        raise SourceError(f"unsafe {what} {name!r} in {label}: escapes the target with '..'")
    return "" if norm == "." else norm


class Layout:
    """The tree a plan will create, decided lexically before anything is written.

    Refuses what a real tree cannot hold (a file and a directory of the same
    name) and what would make the result depend on order (the same file
    twice): a store snapshot has neither.
    """

    def __init__(self, label: str, what: str = "member") -> None:
        self.label, self.what = label, what
        self.kinds: dict[str, str] = {}

    def _parents(self, rel: str, name: str) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if self.kinds.get(parent) == "file":
                raise SourceError(
                    f"unsafe {self.what} {name!r} in {self.label}: its parent {parent!r} is a file in the same source"
                )
            self.kinds[parent] = "dir"

    def add_dir(self, rel: str, name: str) -> None:
        if not rel:
            return
        self._parents(rel, name)
        if self.kinds.get(rel) == "file":
            raise SourceError(f"unsafe {self.what} {name!r} in {self.label}: a file of the same name comes earlier")
        self.kinds[rel] = "dir"

    def add_file(self, rel: str, name: str) -> None:
        if not rel:
            raise SourceError(f"unsafe {self.what} {name!r} in {self.label}: a file with no name")
        self._parents(rel, name)
        if rel in self.kinds:
            clash = (
                "the same file appears twice" if self.kinds[rel] == "file" else "a directory of the same name exists"
            )
            raise SourceError(f"unsafe {self.what} {name!r} in {self.label}: {clash}")
        self.kinds[rel] = "file"


# ---------------------------------------------------------------- the tree


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class SafeTree:
    """A fresh directory that only ever receives regular files and directories at lexical paths."""

    def __init__(self, root: Path, label: str) -> None:
        self.root = Path(root)
        self.label = label
        self.root.mkdir(parents=True, exist_ok=False)
        self.real_root = os.path.realpath(self.root)
        self.fd = os.open(self.root, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def remove(self) -> None:
        """Delete everything written (a refused or failed copy leaves nothing behind)."""
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SafeTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths

    def _parts(self, rel: str) -> list[str]:
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") for p in parts) or rel.startswith("/"):
            raise SourceError(f"unsafe path {rel!r} in {self.label}")  # safe_relpath makes this unreachable
        return parts

    def _check_inside(self, rel_dir: str, name: str) -> None:
        real = os.path.realpath(os.path.join(self.real_root, *rel_dir.split("/"))) if rel_dir else self.real_root
        if not (real == self.real_root or real.startswith(self.real_root.rstrip(os.sep) + os.sep)):
            raise SourceError(f"unsafe member {name!r} in {self.label}: its directory resolves outside the target")

    def _open_dir(self, parts: list[str], name: str, *, create: bool) -> int:
        """A descriptor of root/parts, made on the way when ``create``; never through a link."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:  # ENOSPC, EDQUOT, EROFS ...
                        raise self.cannot_write(exc) from None
                try:
                    nfd = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    raise SourceError(
                        f"unsafe member {name!r} in {self.label}: {part!r} on its path is not a "
                        f"directory of the copy ({exc.strerror})"
                    ) from None
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def mkdir(self, rel: str, name: str) -> None:
        if not rel:
            return
        parts = self._parts(rel)
        os.close(self._open_dir(parts, name, create=True))
        self._check_inside(rel, name)

    def create(self, rel: str, name: str) -> int:
        """A new file at ``rel``, opened for writing; it must not exist (O_EXCL), links are never followed."""
        parts = self._parts(rel)
        parent = self._open_dir(parts[:-1], name, create=True)
        try:
            self._check_inside("/".join(parts[:-1]), name)
            try:
                return os.open(
                    parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600, dir_fd=parent
                )
            except FileExistsError:
                raise SourceError(f"unsafe member {name!r} in {self.label}: the same file appears twice") from None
            except OSError as exc:
                raise self.cannot_write(exc) from None
        finally:
            os.close(parent)

    def open_read(self, rel: str, name: str) -> int:
        """A file this tree wrote earlier, for reading (a hard link's bytes are copied from it)."""
        parts = self._parts(rel)
        parent = self._open_dir(parts[:-1], name, create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=parent)
        finally:
            os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SourceError(f"unsafe member {name!r} in {self.label}: its link target is not a regular file")
        return fd

    def write(
        self,
        rel: str,
        name: str,
        chunks: Iterable[bytes],
        budget: Budget,
        *,
        mode: int = 0o644,
        mtime: float | None = None,
        mtime_ns: tuple[int, int] | None = None,
    ) -> None:
        """Create ``rel`` from ``chunks``, counting every byte before it is written."""
        fd = self.create(rel, name)
        try:
            for chunk in chunks:  # reading errors propagate as they are: the caller names the source
                budget.take(len(chunk))
                try:
                    write_all(fd, chunk)
                except OSError as exc:
                    raise self.cannot_write(exc) from None
            os.fchmod(fd, (mode & 0o777) | stat.S_IRUSR | stat.S_IWUSR)
            set_mtime(fd, mtime=mtime, ns=mtime_ns)
        finally:
            os.close(fd)

    def cannot_write(self, exc: OSError) -> SourceError:
        return SourceError(f"cannot write the copy of {self.label} in {self.root}: {exc.strerror or one_line(exc)}")


def set_mtime(fd: int, *, mtime: float | None = None, ns: tuple[int, int] | None = None) -> None:
    """Best effort: an absurd timestamp in an archive is not worth refusing the store for."""
    try:
        if ns is not None:
            os.utime(fd, ns=ns)
        elif mtime is not None:
            os.utime(fd, (mtime, mtime))
    except (OverflowError, ValueError, OSError):
        pass


def read_chunks(fh, size: int = CHUNK) -> Iterable[bytes]:
    """Chunks from a file object (an archive member, a source file) until EOF."""
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        yield chunk


def fd_chunks(fd: int, size: int = CHUNK) -> Iterable[bytes]:
    while True:
        chunk = os.read(fd, size)
        if not chunk:
            return
        yield chunk


def file_kind(mode: int) -> str:
    """What a non-regular, non-directory entry is, in words."""
    for test, word in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISREG, "regular file"),
    ):
        if test(mode):
            return word
    return "special file"
