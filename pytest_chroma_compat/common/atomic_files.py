"""Whole-file writes that a reader (a CI step, a concurrent shard, a rerun) never sees half done.

Why a module: a shard's result file is rewritten after every pair so an interrupted run resumes,
and the timings cache is rewritten by several shards at once; a torn file in either would lose
finished work or refuse the next plan. A temporary file in the same directory, then
``os.replace``: the old content or the new, never a mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import CompatError


def write_bytes(path: Path | str, data: bytes, what: str = "") -> Path:
    """Replace ``path`` with ``data``; one line (exit 2) when the place cannot be written, naming
    ``what`` the file is ("report": "cannot write report PATH")."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CompatError(f"cannot write {name}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a published file gets the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CompatError(f"cannot write {name}: {exc.strerror or exc}") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path | str, text: str, what: str = "", errors: str = "strict") -> Path:
    return write_bytes(path, text.encode("utf-8", errors), what)


def write_json(path: Path | str, doc: Any) -> Path:
    return write_text(path, json.dumps(doc, indent=1, ensure_ascii=False, default=repr) + "\n")


def read_json(path: Path | str, what: str) -> Any:
    """The parsed file, or one line naming it and ``what`` it should have been."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompatError(f"{path}: no such file (expected {what})") from None
    except (OSError, ValueError) as exc:
        raise CompatError(f"{path} is not a readable {what}: {exc}") from None
