"""How far a transfer got, so that running the same command again resumes it.

Why a journal outside the target: the target is the user's store or server,
and nothing of ours belongs in it. Why counts are enough: the source is a
private copy (or a server nobody should write to during a move), so it pages
in the same order on every run, and records go in with ``upsert``, so the
batch that was in flight when the run stopped is simply written again.
The file is replaced atomically after every batch: a kill leaves the last
complete state, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_chroma_compat.engine import cache_dirs, leftovers
from pytest_chroma_compat.transfer.endpoints import TransferError

#: a journal saying it began more than this far in the future was not written by us
_CLOCK_SLACK = 86400.0


def damaged(stored: dict[str, Any]) -> str:
    """Why a journal read back cannot steer a resume ("" when it can): every field a rerun uses is
    checked for its type and range, so a crafted or corrupted file is a refusal, never an exit 3
    and never an offset that skips records (the offset is also checked against the target: move.py)."""
    started = stored.get("started")
    if (
        isinstance(started, bool)
        or not isinstance(started, (int, float))
        or not 0 <= started <= time.time() + _CLOCK_SLACK
    ):
        return f"started is {str(started)[:40]!r}, not a time"
    collections = stored.get("collections")
    if not isinstance(collections, dict):
        return "collections is not a mapping"
    for label, entry in collections.items():
        if not isinstance(entry, dict):
            return f"the entry of {str(label)[:80]!r} is not a mapping"
        for key in ("copied", "total"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"{key} of {str(label)[:80]!r} is {str(value)[:40]!r}, not a count"
        if not isinstance(entry.get("done"), bool):
            return f"done of {str(label)[:80]!r} is not true or false"
    version = stored.get("target_version")
    if version is not None and not isinstance(version, str):
        return "target_version is not a release"
    return ""


def location(source: str, target: str) -> Path:
    key = hashlib.sha256(f"{source}\0{target}".encode()).hexdigest()[:16]
    return cache_dirs.scratch_dir() / "transfers" / f"{key}.json"


class Journal:
    """Per collection (``tenant/database:name`` labels): records copied, and whether it is done."""

    def __init__(self, path: Path, source: str, target: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"source": source, "target": target, "started": time.time(), "collections": {}}
        self.resumed = False
        if path.exists():
            try:
                stored = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                stored = None  # a journal we cannot read resumes nothing: the target check then refuses
            if isinstance(stored, dict) and stored.get("source") == source and stored.get("target") == target:
                damage = damaged(stored)
                if damage:  # read from a file: never trusted to steer a resume (issue 24, attack pass)
                    raise TransferError(
                        f"this command's resume journal {path} is damaged ({damage}); delete it "
                        "and the partly written target, then run the command again"
                    )
                self.data, self.resumed = stored, True

    def entry(self, label: str) -> dict[str, Any] | None:
        return self.data["collections"].get(label)

    def begin(self, label: str, total: int) -> dict[str, Any]:
        return self.data["collections"].setdefault(label, {"copied": 0, "total": total, "done": False})

    def advance(self, label: str, copied: int) -> None:
        self.data["collections"][label]["copied"] = copied
        self.save()

    def finish(self, label: str) -> None:
        self.data["collections"][label]["done"] = True
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=leftovers.prefix(".journal"))  # env prune owns it
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
