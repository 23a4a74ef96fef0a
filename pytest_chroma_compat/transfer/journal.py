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

from .. import paths


def location(source: str, target: str) -> Path:
    key = hashlib.sha256(f"{source}\0{target}".encode()).hexdigest()[:16]
    return paths.scratch_dir() / "transfers" / f"{key}.json"


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
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
