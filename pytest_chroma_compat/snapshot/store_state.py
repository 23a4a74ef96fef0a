"""States a real store is found in that are not damage: a writer that crashed, and one still at work.

Why this exists: the inventory reads SQLite with ``mode=ro``, which cannot
roll back a *hot* journal (a writer stopped mid-transaction) and so called
such a store "damaged", though every release opens it: SQLite rolls the
journal back on the first read-write open. We do exactly that, on the private
copy only, before the inventory reads it. A writer still at work on the
*source* is a different matter: the copy may be torn, and the honest answer is
to say so and stop, found without writing a byte to the source (a POSIX lock
query on a read-only descriptor).

Measured: 0.4.24, 0.6.3 and 1.5.9 all leave stores in rollback-journal mode
(header bytes 18/19 = 1); a ``-wal`` appears only if another tool switched the
store to WAL, and is applied the same way.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.snapshot.sqlite_reads import check_stopped, guard

SQLITE_FILE = "chroma.sqlite3"
#: SQLite's lock bytes (os_unix.c): PENDING, RESERVED, then the 510-byte SHARED range
PENDING_BYTE = 0x40000000
LOCK_SPAN = 2 + 510
#: in WAL mode a writer locks byte 120 of the -shm file (WAL_WRITE_LOCK), not the database
WAL_WRITE_LOCK = 120
#: the first eight bytes of a rollback journal that still holds a transaction
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
#: a writer between two statements holds its lock for milliseconds: look a few times
SAMPLES, INTERVAL = 5, 0.02

ROLLED_BACK = (
    "the store had a hot journal (a writer stopped mid-transaction); rolled back on the private copy, "
    "as the release itself would"
)
WAL_APPLIED = (
    "the store had {n} bytes in SQLite's write-ahead log ({name}-wal) not yet checkpointed; applied on "
    "the private copy, as the release itself would"
)


class LiveWriter(CompatError):
    """Another process is writing to the source right now (exit 2: a copy now may be torn)."""


class StoreRefused(CompatError):
    """The store holds something no Chroma release writes, which SQLite would act on outside the copy."""


def super_journal(journal: Path) -> str | None:
    """The super-journal a rollback journal names in its trailer, or None.

    Why it matters: rolling a journal back makes SQLite read the file it names
    (any absolute path) and delete it when it points nowhere back; chromadb never
    commits across databases, so a Chroma store's journal never names one, and a
    crafted one could make recovery delete a file of the user's (SQLite's file
    format: ... name, 4-byte length, 4-byte checksum, the 8-byte journal magic).
    """
    try:
        with open(journal, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size < 16 + 1:
                return None
            fh.seek(size - 16)
            tail = fh.read(16)
            length = struct.unpack(">I", tail[:4])[0]
            if tail[8:] != JOURNAL_MAGIC or not 0 < length <= size - 16:
                return None
            fh.seek(size - 16 - length)
            return fh.read(length).split(b"\0", 1)[0].decode("utf-8", "replace") or None
    except OSError:
        return None


@dataclass(frozen=True)
class WriteLock:
    pid: int
    file: str

    def message(self) -> str:
        who = f"pid {self.pid}" if self.pid > 0 else "a process (in another PID namespace or host)"
        return (
            f"another process is writing to this store ({who} holds a write lock on {self.file}); "
            "validate a quiescent snapshot or stop the writer"
        )


def _flock(kind: int, start: int, length: int) -> tuple[bytes, str] | None:
    """``struct flock`` for this platform and its layout; None where we do not know it."""
    if sys.platform.startswith("linux") and struct.calcsize("P") == 8:
        fmt = "hhqqi0q"  # l_type, l_whence, l_start, l_len, l_pid (+ tail padding)
        return struct.pack(fmt, kind, os.SEEK_SET, start, length, 0), fmt
    if sys.platform == "darwin" or "bsd" in sys.platform:
        fmt = "qqihh"  # l_start, l_len, l_pid, l_type, l_whence
        return struct.pack(fmt, start, length, 0, kind, os.SEEK_SET), fmt
    return None


def _write_lock_holder(path: Path, start: int, length: int) -> int | None:
    """The pid holding a write lock on ``[start, start+length)`` of ``path``, or None.

    Why F_RDLCK: a read lock conflicts only with write locks, so readers
    (SHARED locks) never answer; only RESERVED, PENDING and EXCLUSIVE do.
    The file is opened O_RDONLY and no lock is taken: the source is only read.
    """
    packed = _flock(fcntl.F_RDLCK, start, length)
    if packed is None:
        return None
    buf, fmt = packed
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None  # unreadable or absent: copying it will say so in its own words
    try:
        out = fcntl.fcntl(fd, fcntl.F_GETLK, buf)
    except OSError:
        return None  # a file system without POSIX locks: the before/after hash still guards the copy
    finally:
        os.close(fd)
    fields = struct.unpack(fmt, out)
    kind, pid = (fields[0], fields[4]) if fmt.startswith("hh") else (fields[3], fields[2])
    return pid if kind != fcntl.F_UNLCK else None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def write_lock(source: Path) -> WriteLock | None:
    """A write lock another process holds on the store at ``source`` now, sampled a few times."""
    db = Path(source) / SQLITE_FILE
    if not _regular(db):  # a link is never followed: what it points at is outside the source (refused later)
        return None
    shm = db.with_name(f"{SQLITE_FILE}-shm")
    for attempt in range(SAMPLES):
        pid = _write_lock_holder(db, PENDING_BYTE, LOCK_SPAN)
        if pid is not None:
            return WriteLock(pid, SQLITE_FILE)
        if _regular(shm):
            pid = _write_lock_holder(shm, WAL_WRITE_LOCK, 1)
            if pid is not None:
                return WriteLock(pid, shm.name)
        if attempt + 1 < SAMPLES:
            time.sleep(INTERVAL)
    return None


def refuse_live_writer(source: str | Path) -> None:
    """Raise :class:`LiveWriter` when another process is writing to a directory source.

    Archives and S3 objects are not live stores: nothing to do for them.
    """
    path = Path(source).expanduser()
    if not path.is_dir():
        return
    lock = write_lock(path)
    if lock is not None:
        raise LiveWriter(lock.message())


def _hot_journal(db: Path) -> bool:
    journal = db.with_name(f"{db.name}-journal")
    try:
        with open(journal, "rb") as fh:
            return fh.read(len(JOURNAL_MAGIC)) == JOURNAL_MAGIC
    except OSError:
        return False


def recover(copy: Path) -> list[str]:
    """Roll back a hot journal and apply a pending WAL on the private copy ``copy``; the notes say what was done.

    One read-write open and a read is what any release does first; SQLite
    does the recovery itself, so the copy then holds what the release would
    see. Never call this on the user's source.
    """
    db = Path(copy) / SQLITE_FILE
    if not db.is_file():
        return []
    wal = db.with_name(f"{SQLITE_FILE}-wal")
    hot = _hot_journal(db)
    wal_bytes = wal.stat().st_size if wal.is_file() else 0
    journal = db.with_name(f"{SQLITE_FILE}-journal")
    named = super_journal(journal)  # whether or not it looks hot: the releases' SQLite decides that later
    if named is not None:
        raise StoreRefused(
            f"{journal.name} names a super-journal ({named!r}), which no Chroma release writes and "
            "SQLite would read and delete when rolling back: a crafted store; refusing it"
        )
    if not hot and not wal_bytes:
        return []
    conn = guard(sqlite3.connect(str(db), isolation_level=None))
    try:
        conn.execute("pragma schema_version").fetchone()  # the first read recovers
    except sqlite3.DatabaseError as exc:
        raise check_stopped(exc) from None
    finally:
        conn.close()  # the last connection to close checkpoints and removes the -wal
    notes = []
    if hot and not _hot_journal(db):
        notes.append(ROLLED_BACK)
    if wal_bytes:
        notes.append(WAL_APPLIED.format(n=wal_bytes, name=SQLITE_FILE))
    return notes
