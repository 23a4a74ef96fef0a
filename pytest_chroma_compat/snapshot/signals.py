"""What a store says about the release that wrote it, read with read-only SQLite and file names only.

Why a module of its own: the same reader runs on a store written on purpose by
every release (``writers.py`` measures, and records the result in
``writers.json``) and on the user's store (the inventory), so the comparison
is like with like. Every signal is a sorted list of short strings, so the
table stays readable and two stores compare by set operations.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

SQLITE_FILE = "chroma.sqlite3"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: SQLite's own tables and the shadow tables of the full-text index: not chromadb's choice
_INTERNAL = re.compile(r"^sqlite_|^embedding_fulltext_search_(data|idx|docsize|config|content)$")


def read(root: Path, conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every writer signal of the store at ``root`` (``conn``: its database, opened read-only)."""
    tables = sorted(r[0] for r in conn.execute("select name from sqlite_master where type='table'"))
    out: dict[str, list[str]] = {
        "migrations": [
            f"{d}/{f}" for d, f in conn.execute("select dir, filename from migrations order by dir, version")
        ],
        "migration_hashes": _migration_hashes(conn),
        "user_version": [str(conn.execute("pragma user_version").fetchone()[0])],
        "schema": sorted(f"{t}.{c}" for t in tables if not _INTERNAL.match(t) for c in _columns(conn, t)),
        "config_keys": _json_keys(conn, tables, "config_json_str"),
        "schema_keys": _json_keys(conn, tables, "schema_str"),
        "segment_types": _segment_types(conn, tables),
        "segment_files": _segment_files(root),
    }
    return out


def _migration_hashes(conn: sqlite3.Connection) -> list[str]:
    """ "dir/file=md5" per applied migration; a SHA-256 store (``migrations_hash_algorithm``) as MD5 too.

    Why: writers.json holds the MD5 each release records by default; a store
    created with sha256 records SHA-256 of the same SQL, and keeps that SQL, so
    its MD5 (checked to be the SQL the stored digest was taken of) is compared
    like with like, and the store's range narrows as an MD5 store's would.
    """
    cols = _columns(conn, "migrations")
    sql = "sql" if "sql" in cols else "null"
    out = []
    for d, f, h, text in conn.execute(f"select dir, filename, hash, {sql} from migrations order by dir, version"):
        if (
            isinstance(h, str)
            and len(h) == 64
            and isinstance(text, str)
            and hashlib.sha256(text.encode("utf-8")).hexdigest() == h.lower()
        ):
            h = hashlib.md5(text.encode("utf-8")).hexdigest()
        out.append(f"{d}/{f}={h}")
    return out


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"pragma table_info('{table}')")]


#: JSON objects whose keys are the user's (an embedding function's settings, metadata key names)
_USER_KEYS = frozenset({"embedding_function", "keys"})


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Key paths of a JSON object ("hnsw.space"); the values are the user's choice, the keys the release's."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, sub in value.items():
        path = f"{prefix}{key}"
        found.add(path)
        if key not in _USER_KEYS:
            found |= _paths(sub, path + ".")
    return found


def _json_keys(conn: sqlite3.Connection, tables: list[str], column: str) -> list[str]:
    """Key paths of each collection's JSON in ``column``, one "a,b.c" string per distinct set.

    Per collection, not merged: collections created by different releases keep
    the JSON their creator wrote, and each set is matched on its own.
    """
    if "collections" not in tables or column not in _columns(conn, "collections"):
        return []
    found: set[str] = set()
    for (text,) in conn.execute(f"select {column} from collections"):
        try:
            found.add(",".join(sorted(_paths(json.loads(text)))) if text else "")
        except (TypeError, ValueError):
            found.add("<unparsed>")
    return sorted(found)


def _segment_types(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    if "segments" not in tables:
        return []
    return sorted({f"{scope}:{kind}" for kind, scope in conn.execute("select type, scope from segments")})


def _segment_files(root: Path) -> list[str]:
    """File names inside segment directories (the vector index format is the release's)."""
    names = set()
    for d in root.iterdir():
        if d.is_dir() and _UUID.match(d.name):
            names |= {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    return sorted(names)


def read_path(root: Path) -> dict[str, list[str]]:
    """:func:`read` on a store directory (used by the measurement, which has no inventory)."""
    conn = sqlite3.connect(f"{(Path(root) / SQLITE_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return read(Path(root), conn)
    finally:
        conn.close()
