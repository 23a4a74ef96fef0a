"""Extracting an archive someone else made: plan every member by name, then write regular files only.

An archive is untrusted input: it may try to write outside the target
(``../``, absolute names, symbolic links that later members go through,
hard links to such links), fill the disk (a zip bomb), or never end (a
device, a FIFO). Two passes:

1. **Plan**, without touching the filesystem: every member's name is
   normalized and checked (:func:`~.safecopy.safe_relpath`), its type
   decided, its declared size and the member count checked against the
   limits as the headers are read (so a bomb is refused before its data is
   even decompressed). The layout must be a real tree (:class:`~.safecopy.Layout`).

   - symbolic links are refused: a Chroma store holds no links, and refusing
     them is what makes "no write through a link" true by construction;
   - a hard link is allowed only when it names an *earlier regular-file
     member* of the same archive (looked up in the plan by normalized name,
     never through the filesystem); its bytes are copied;
   - devices, FIFOs and anything else are refused.

2. **Write** through :class:`~.safecopy.SafeTree` (lexical destinations,
   ``O_NOFOLLOW|O_CREAT|O_EXCL``) while :class:`~.safecopy.Budget` counts the
   bytes actually written. Any refusal or error removes the partial tree.
"""

from __future__ import annotations

import lzma
import os
import stat
import tarfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Literal

from pytest_chroma_compat.snapshot.safecopy import (
    Budget,
    Layout,
    SafeTree,
    SourceError,
    fd_chunks,
    file_kind,
    one_line,
    read_chunks,
    safe_relpath,
)

__all__ = ["ArchiveKind", "TAR_SUFFIXES", "ZIP_SUFFIXES", "archive_kind", "extract", "store_root"]

ArchiveKind = Literal["tar", "zip"]

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)

#: errors that mean "this archive cannot be read", as opposed to a refusal
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
)


def archive_kind(name: str, fh: BinaryIO) -> ArchiveKind | None:
    """By suffix, else by content (read-only sniffing of an already-opened regular file)."""
    lowered = name.lower()
    if lowered.endswith(ZIP_SUFFIXES):
        return "zip"
    if lowered.endswith(TAR_SUFFIXES):
        return "tar"
    try:
        fh.seek(0)
        if zipfile.is_zipfile(fh):
            return "zip"
        fh.seek(0)
        try:
            with tarfile.open(fileobj=fh, mode="r:*"):
                return "tar"
        except tarfile.TarError:
            return None
    except _READ_ERRORS:
        return None
    finally:
        fh.seek(0)


def _symlink_refused(name: str, label: str) -> SourceError:
    return SourceError(f"symlink member {name!r} in {label}: a Chroma store holds no links; refusing it")


def _special_refused(name: str, label: str, what: str) -> SourceError:
    return SourceError(
        f"unsafe member {name!r} in {label}: {what}; a Chroma store holds only files and directories; refusing it"
    )


def extract(fh: BinaryIO, kind: ArchiveKind, target: Path, *, label: str, budget: Budget) -> Path:
    """Plan, then extract ``fh`` into the new directory ``target``; return the store's root in it.

    ``fh`` is the archive, already opened read-only and known to be a regular
    file. Raises :class:`SourceError`; nothing is left in ``target`` then.
    """
    try:
        tree = SafeTree(target, label)
    except OSError as exc:
        raise SourceError(f"cannot write the copy of {label} in {target.parent}: {one_line(exc)}") from None
    try:
        if kind == "tar":
            _extract_tar(fh, tree, label=label, budget=budget)
        else:
            _extract_zip(fh, tree, label=label, budget=budget)
    except SourceError:
        tree.remove()
        raise
    except _READ_ERRORS as exc:  # writing errors became SourceError in SafeTree: these are the archive's
        tree.remove()
        raise SourceError(f"cannot read archive {label}: {one_line(exc)}") from None
    except BaseException:
        tree.remove()
        raise
    tree.close()
    return store_root(target)


# ---------------------------------------------------------------- tar


def _extract_tar(fh: BinaryIO, tree: SafeTree, *, label: str, budget: Budget) -> None:
    plan: list[tuple[tarfile.TarInfo, str, str | None]] = []  # (member, rel, hard link target rel)
    layout = Layout(label)
    regular: set[str] = set()
    with tarfile.open(fileobj=fh, mode="r:*") as tf:
        # Iterating reads one header at a time; the checks run before the next
        # header is read, i.e. before a bomb member's data is decompressed.
        for m in tf:
            budget.member()
            rel = safe_relpath(m.name, label=label)
            if m.issym():
                raise _symlink_refused(m.name, label)
            if m.islnk():
                try:
                    link = safe_relpath(m.linkname, label=label)
                except SourceError:
                    raise SourceError(
                        f"unsafe member {m.name!r} in {label}: hard link to {m.linkname!r} points outside the archive"
                    ) from None
                if link not in regular:
                    raise SourceError(
                        f"unsafe member {m.name!r} in {label}: hard link to {m.linkname!r}, which is "
                        "not an earlier regular file of the archive; refusing it"
                    )
                layout.add_file(rel, m.name)
                plan.append((m, rel, link))
                continue
            if m.isdir():
                layout.add_dir(rel, m.name)
                plan.append((m, rel, None))
                continue
            if not m.isfile():
                what = (
                    "device"
                    if m.isdev() and not m.isfifo()
                    else "FIFO"
                    if m.isfifo()
                    else f"tar member type {m.type!r}"
                )
                raise _special_refused(m.name, label, what)
            budget.declare(m.size)
            layout.add_file(rel, m.name)
            regular.add(rel)
            plan.append((m, rel, None))
        for m, rel, link in plan:
            if m.isdir():
                tree.mkdir(rel, m.name)
            elif link is not None:
                src = tree.open_read(link, m.name)
                try:
                    tree.write(rel, m.name, fd_chunks(src), budget, mode=m.mode, mtime=m.mtime)
                finally:
                    os.close(src)
            else:
                data = tf.extractfile(m)
                if data is None:  # unreachable: isfile() members always have data
                    raise SourceError(f"cannot read member {m.name!r} of {label}")
                with data:
                    tree.write(rel, m.name, read_chunks(data), budget, mode=m.mode, mtime=m.mtime)


# ---------------------------------------------------------------- zip


def _zip_entry_count(fh: BinaryIO) -> int | None:
    """The entry count from the end record, read before :class:`zipfile.ZipFile` parses every entry."""
    try:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # stable since Python 2
    except (AttributeError, OSError, ValueError, zipfile.BadZipFile):
        return None
    finally:
        fh.seek(0)
    return None if not end else int(end[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def _extract_zip(fh: BinaryIO, tree: SafeTree, *, label: str, budget: Budget) -> None:
    declared_entries = _zip_entry_count(fh)
    if declared_entries is not None and declared_entries > budget.max_members:
        budget.members = declared_entries - 1
        budget.member()  # refuses, with the usual message
    plan: list[tuple[zipfile.ZipInfo, str, bool]] = []
    layout = Layout(label)
    with zipfile.ZipFile(fh) as zf:
        for info in zf.infolist():
            budget.member()
            rel = safe_relpath(info.filename, label=label)
            mode = info.external_attr >> 16
            ftype = stat.S_IFMT(mode)
            if ftype == stat.S_IFLNK:
                raise _symlink_refused(info.filename, label)
            if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
                raise _special_refused(info.filename, label, file_kind(mode))
            is_dir = info.is_dir() or ftype == stat.S_IFDIR
            if is_dir:
                layout.add_dir(rel, info.filename)
            else:
                budget.declare(info.file_size)
                layout.add_file(rel, info.filename)
            plan.append((info, rel, is_dir))
        for info, rel, is_dir in plan:
            if is_dir:
                tree.mkdir(rel, info.filename)
                continue
            try:
                mtime: float | None = time.mktime(info.date_time + (0, 0, -1))
            except (OverflowError, ValueError):
                mtime = None
            mode = (info.external_attr >> 16) & 0o777 or 0o644
            with zf.open(info) as data:
                tree.write(rel, info.filename, read_chunks(data), budget, mode=mode, mtime=mtime)


def store_root(target: Path) -> Path:
    """An archive of ``chroma_data/`` holds one top-level directory: the store is inside it."""
    entries = [p for p in target.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return target
