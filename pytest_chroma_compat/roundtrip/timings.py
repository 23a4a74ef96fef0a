"""Measured seconds of every pair-path the harness ran: what a matrix plan balances shards by.

Why: the cost of a pair is anything but uniform (measured on the committed matrix, one
0.5.23 -> 1.0.21 unflushed-wal failure shrank for 228 s while most pair-paths take 2-5 s), so
shards cut by count end at very different times. ``check`` and ``matrix`` (sharded or not)
record here; ``matrix --plan`` reads. Keyed old/new/path, the last few samples kept and their
median used, so one run on a loaded machine does not swing the next plan. Shards on one machine
record at once: a file lock around read-modify-write, and an atomic replace.
``CHROMA_COMPAT_TIMINGS`` names another file (tests keep theirs private).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common import atomic_files
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine import cache_dirs

FORMAT = 1
SAMPLES = 5  # per pair-path; the median of these is the measured cost
#: a cache of a few hundred pair-paths is tens of kB; a larger file, or a sample outside 0..a week,
#: is not one this tool wrote, and counts as empty (or is skipped): it is a cache, never trusted
MAX_FILE_BYTES = 8 * 2**20
MAX_SECONDS = 7 * 86400.0

Key = tuple[str, str, str]  # old, new, path


def file() -> Path:
    chosen = os.environ.get("CHROMA_COMPAT_TIMINGS")
    return Path(chosen).expanduser() if chosen else cache_dirs.home() / "timings.json"


def _samples(where: Path) -> dict[str, dict[str, dict[str, list[float]]]]:
    """old -> new -> path -> seconds; an unreadable or foreign file counts as empty (it is a cache)."""
    try:
        if where.stat().st_size > MAX_FILE_BYTES:
            return {}
        doc = atomic_files.read_json(where, "timings file")
    except (OSError, CompatError):
        return {}
    table = doc.get("timings") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    return table if isinstance(table, dict) else {}


def load(where: Path | None = None) -> dict[Key, float]:
    """The measured cost of every pair-path on record: the median of its last samples."""
    out: dict[Key, float] = {}
    for old, news in _samples(where or file()).items():
        for new, by_path in news.items() if isinstance(news, dict) else ():
            for path, seconds in by_path.items() if isinstance(by_path, dict) else ():
                kept = _valid(seconds)
                if kept:
                    out[(old, new, path)] = float(statistics.median(kept))
    return out


def _valid(seconds: object) -> list[float]:
    """The samples that are durations (finite, 0..MAX_SECONDS); anything else in a cache is skipped."""
    if not isinstance(seconds, list):
        return []
    return [
        float(s)
        for s in seconds[-SAMPLES:]
        if isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and 0 <= s <= MAX_SECONDS
    ]


def record(
    measured: Iterable[tuple[str, str, str, float]], where: Path | None = None, only_missing: bool = False
) -> int:
    """Add samples; returns how many were added. Best effort: a cache that cannot be written costs
    the next plan its balance, never the verdict of the run that measured it."""
    rows = [(o, n, p, round(float(s), 2)) for o, n, p, s in measured]
    if not rows:
        return 0
    where = where or file()
    from filelock import FileLock, Timeout

    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(where) + ".lock", timeout=60):
            table = _samples(where)
            added = 0
            for old, new, path, seconds in rows:
                kept = _slot(_slot(_slot(table, old, dict), new, dict), path, list)
                if only_missing and kept:
                    continue
                kept[:] = (kept + [seconds])[-SAMPLES:]
                added += 1
            atomic_files.write_json(where, {"format": FORMAT, "timings": table})
            return added
    except (OSError, CompatError, Timeout):
        return 0


def _slot(table: dict, key: str, kind: type) -> Any:
    """``table[key]``, replaced by an empty ``kind`` when a damaged cache holds something else there."""
    if not isinstance(table.get(key), kind):
        table[key] = kind()
    return table[key]


def from_matrix_json(doc: dict) -> list[tuple[str, str, str, float]]:
    """The pair-path seconds of a matrix JSON (``matrix --json``): to seed a cache that has none."""
    return [
        (cell["old"], cell["new"], p["path"], p["seconds"])
        for cell in doc.get("cells", [])
        for p in cell.get("paths", [])
        if isinstance(p.get("seconds"), (int, float)) and p.get("invariants")
    ]
