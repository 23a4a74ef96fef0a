"""Kept runs: every ``run``/``bisect``/``--chroma-under`` gets a directory of its own under the cache,
``runs/<project-id>/<timestamp>-<pid>/`` holding ``chromadb-V.log`` per release and ``run.json``.

Why it is built this way:
- A log used to live at ``runs/<project directory name>/chromadb-V.log``: the next
  run of any project with the same directory name overwrote it. The project id
  is the name plus a short hash of the resolved path (two checkouts called
  ``app`` never share), and the timestamp (UTC, milliseconds, sortable) plus the
  pid makes each run's directory its own.
- ``run.json`` says what ran (command, project, options, releases) and, once the
  run ends, each release's outcome; ``chroma-compat run --list`` reads it.
- The kind is registered in ``leftovers.REGISTRY`` (``run-kept``): kept, never
  swept quietly; ``env prune --older-than DAYS`` removes runs untouched that long
  whose process is gone (a run in progress is never removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common import atomic_files
from pytest_chroma_compat.engine import cache_dirs, leftovers

RUN_FILE = "run.json"
KIND = "run-kept"
_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{3}Z)-(\d+)$")


def root() -> Path:
    return cache_dirs.home() / "runs"


def project_id(project: Path) -> str:
    """``<name>-<8 hex of the resolved path>``: stable per checkout, distinct across checkouts."""
    resolved = project.resolve()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", resolved.name)[:40] or "project"
    return f"{safe}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"


def start(project: Path, command: list[str], what: str, **info: Any) -> Path:
    """A new run directory for ``project`` with its ``run.json`` (no results yet)."""
    folder = root() / project_id(project)
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        now = datetime.now(timezone.utc)
        name = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{os.getpid()}"
        try:
            (folder / name).mkdir()
            break
        except FileExistsError:
            time.sleep(0.002)
    run = folder / name
    assert leftovers.kind_of(name) is not None and leftovers.kind_of(name).prefix == KIND  # type: ignore[union-attr]
    _write(
        run,
        {
            "what": what,
            "project": str(project.resolve()),
            "command": command,
            "started": now.isoformat(),
            **info,
            "results": None,
        },
    )
    return run


def finish(run: Path, results: list[Any], **info: Any) -> None:
    """Record each release's outcome in the run's ``run.json``."""
    data = read(run) or {}
    data.update(
        info,
        finished=datetime.now(timezone.utc).isoformat(),
        results=[
            {
                "version": r.version,
                "status": r.status,
                "counts": r.counts,
                "failures": r.failures[:50],
                "reason": r.reason[:300],
                "bound_ignored": r.bound_ignored,
                "log": r.log,
            }
            for r in results
        ],
    )
    _write(run, data)


def _write(run: Path, data: dict) -> None:
    atomic_files.write_text(run / RUN_FILE, json.dumps(data, indent=1) + "\n")


def read(run: Path) -> dict | None:
    try:
        data = json.loads((run / RUN_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def runs(project: Path | None = None) -> list[Path]:
    """Kept runs, newest first: of ``project``, or of every project."""
    folders = (
        [root() / project_id(project)]
        if project is not None
        else (sorted(p for p in root().iterdir() if p.is_dir() and not p.is_symlink()) if root().is_dir() else [])
    )
    out = [r for f in folders if f.is_dir() for r in f.iterdir() if _NAME.match(r.name) and r.is_dir()]
    return sorted(out, key=lambda p: p.name, reverse=True)


def describe(run: Path) -> str:
    """One line: when, what, how it went, where."""
    data = read(run) or {}
    results = data.get("results")
    if results is None:
        how = "in progress" if leftovers.alive(int(_NAME.match(run.name).group(2))) else "interrupted"  # type: ignore
    else:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
        how = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no releases"
    command = " ".join(data.get("command") or [])
    return f"{run.name[:19]}  {data.get('what', '?'):<12} {how:<28} {command[:60]}  {run}"


def prune(older_than_days: float, sizes: dict[str, int] | None = None) -> list[str]:
    """Remove kept runs untouched for ``older_than_days`` whose process is gone; returns what went
    (and the bytes each freed, into ``sizes``)."""
    removed: list[str] = []
    cutoff = time.time() - older_than_days * 86400
    for run in runs():
        m = _NAME.match(run.name)
        if m is None or leftovers.held(run):
            continue
        pid = int(m.group(2))
        try:
            newest = max([run.lstat().st_mtime] + [p.lstat().st_mtime for p in run.iterdir()])
        except OSError:
            continue
        if newest > cutoff or (
            pid != os.getpid() and leftovers.alive(pid) and (read(run) or {}).get("results") is None
        ):
            continue
        freed = leftovers.size_of(run)
        if leftovers.remove(run) is None:
            removed.append(str(run))
            if sizes is not None:
                sizes[str(run)] = freed
    if root().is_dir():
        for folder in root().iterdir():  # a project whose runs are all gone: its folder goes too
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
    return removed
