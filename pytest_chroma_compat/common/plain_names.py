"""Names and numbers read from files we did not just write: checked before they decide anything.

Why a module: a shard's result file comes from a CI job (a fork's, say), a plan from a repository,
a case file from an issue; each carries names the tool joins onto a folder and counts it loops
over. A name must be one plain path component (no separator, no ``..``, nothing absolute, no
control character), so ``folder / name`` stays inside ``folder``; a count must be an int within a
stated bound, so a crafted ``100000000`` is one line, not a machine out of memory. Every refusal
is a :class:`CompatError` (exit 2) naming the file, the field and the bad value.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import CompatError

MAX_NAME = 255  # bytes, as most filesystems allow for one component


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plain(value: Any, what: str, where: str | Path = "") -> str:
    """``value`` when it is one plain relative file name; else one line naming ``where`` and ``what``."""
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str) or not value:
        raise CompatError(f"{prefix}{what} must be a file name, not {_show(value)}")
    bad = (
        value in (".", "..")
        or "/" in value
        or "\\" in value
        or os.sep in value
        or (os.altsep and os.altsep in value)
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME
    )
    if bad:
        raise CompatError(
            f"{prefix}{what} {_show(value)} is not a plain file name (no folder, no '..', "
            f"nothing absolute): refusing to write outside its folder"
        )
    return value


def inside(folder: Path, name: Any, what: str, where: str | Path = "") -> Path:
    """``folder / name`` for a plain ``name``: one component, so it cannot leave ``folder`` (and a write
    through atomic_files replaces a link standing there rather than following it)."""
    return Path(folder) / plain(name, what, where)


def count(value: Any, what: str, low: int, high: int, where: str | Path = "") -> int:
    """An int in ``low..high``; bools and floats are not counts."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CompatError(f"{prefix}{what} must be a whole number from {low} to {high}, not {_show(value)}")
    return value


def digest(doc: dict, field: str = "digest") -> str:
    """sha256 over the canonical JSON of ``doc`` without its own ``field``: what an edit changes."""
    body = {k: v for k, v in doc.items() if k != field}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sealed(doc: dict, field: str = "digest") -> dict:
    """``doc`` with its digest, the last key."""
    out = {k: v for k, v in doc.items() if k != field}
    out[field] = digest(out, field)
    return out


def check_sealed(doc: dict, where: str | Path, what: str, fix: str, field: str = "digest") -> None:
    if doc.get(field) != digest(doc, field):
        raise CompatError(f"{where} was edited after {what} wrote it (its digest does not match its content); {fix}")


def size_at_most(path: Path | str, limit: int, what: str) -> None:
    """Refuse a file larger than ``limit`` before reading it into memory, and anything that is not a
    regular file: a FIFO hangs the read, a link to ``/dev/zero`` (size 0) reads until memory runs out."""
    try:
        st = os.stat(path)
    except OSError:
        return  # the reader names a missing or unreadable file
    size = st.st_size
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):  # a folder: the reader names it
        raise CompatError(
            f"{path} is not a regular file (a FIFO, a device or a socket): refusing to read it as a {what}"
        )
    if size > limit:
        raise CompatError(f"{path} is {size} bytes, more than the {limit} a {what} can be: refusing to read it")
