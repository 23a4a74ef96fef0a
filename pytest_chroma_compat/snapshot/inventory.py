"""What a store holds, read without trusting it and without any chromadb.

Why in the host and not in a worker: the inventory decides *which* release
reads the store, so it cannot need one. It only ever reads the private copy,
SQLite in read-only mode (``mode=ro``), and file names and sizes; a hot
journal or pending WAL, which ``mode=ro`` cannot recover, is first recovered on
that copy by :mod:`.store_state`, as the release's own first open would.
Pickles (``index_metadata.pickle``, 0.3's ``*.pkl``) are listed by size and
read opcode by opcode (``pickles.py``), never loaded: unpickling runs code from
whoever made the file. Every query adapts to the
columns the schema has, since 0.4, 0.5, 0.6 and the 1.x Rust core each added
some.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from pytest_chroma_compat.roundtrip.paths import LEGACY_MARKERS, detect_format
from pytest_chroma_compat.snapshot import pickles, signals, store_settings, store_state, writers
from pytest_chroma_compat.snapshot.sqlite_reads import READ_SECONDS, SQLITE_FILE, StoreUnreadable, check_stopped, guard  # noqa: F401  (re-exported)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: files a local HNSW segment directory holds; a directory with none of them is empty
SEGMENT_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin")


def take(path: Path) -> dict[str, Any]:
    """The inventory of the store at ``path`` (a private copy) as JSON-able data.

    ``problems`` lists damage found without any release (a vector segment
    whose directory is gone, a table that cannot be read); the validator turns
    them into the ``integrity`` check.
    """
    path = Path(path)
    fmt = detect_format(path)
    files = _files(path)
    inv: dict[str, Any] = {"format": fmt, "files": len(files), "bytes": sum(files.values()), "problems": []}
    if fmt == "duckdb+parquet":
        inv["format_evidence"] = [m for m in LEGACY_MARKERS if (path / m).exists()] or ["index/"]
        inv["writer_range"] = writers.legacy_range()
        _pickles(path, inv, files)
        return inv
    if fmt != "sqlite":
        found = ", ".join(sorted(files)[:5]) or "nothing"
        raise StoreUnreadable(
            f"not a Chroma persistent directory (no {SQLITE_FILE} and no 0.3 parquet files; found {found})"
        )
    inv["format_evidence"] = [SQLITE_FILE]
    try:
        recovered = store_state.recover(path)  # a hot journal or pending WAL, as the release would on open
        if recovered:
            inv.setdefault("notes", []).extend(recovered)
            files = _files(path)
            inv.update(files=len(files), bytes=sum(files.values()))
        _read_sqlite(path, inv, files)
    except sqlite3.DatabaseError as exc:
        raise check_stopped(exc) from None
    except store_state.StoreRefused as exc:
        raise StoreUnreadable(str(exc)) from None
    return inv


def _files(root: Path) -> dict[str, int]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


#: every table the inventory queries by name
READ_TABLES = frozenset(
    {
        "migrations",
        "collections",
        "collection_metadata",
        "segments",
        "segment_metadata",
        "embeddings",
        "embedding_metadata",
        "embeddings_queue",
        "embeddings_queue_config",
        "tenants",
        "databases",
        "max_seq_id",
        "embedding_fulltext_search",
        "embedding_fulltext_search_content",
    }
)


def _connect(db: Path) -> sqlite3.Connection:
    conn = guard(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True))
    conn.execute("select count(*) from sqlite_master").fetchone()  # fails now on a non-database
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"pragma table_info('{table}')")]


def _typed(row: tuple, names: list[str]) -> Any:
    """A metadata value from its typed columns (str/int/float/bool), as the release would return it."""
    values = dict(zip(names, row))
    if values.get("bool_value") is not None:
        return bool(values["bool_value"])
    for key in ("str_value", "string_value", "int_value", "float_value"):
        if values.get(key) is not None:
            return values[key]
    return None


def _read_sqlite(root: Path, inv: dict[str, Any], files: dict[str, int]) -> None:
    conn = _connect(root / SQLITE_FILE)
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        views = sorted(
            r[0] for r in conn.execute("select name from sqlite_master where type='view'") if r[0] in READ_TABLES
        )
        if views:  # chromadb creates these as tables; a view in their place is code the host would run
            raise StoreUnreadable(
                f"{SQLITE_FILE} has views where Chroma keeps tables ({', '.join(views)}): "
                "a crafted database; refusing it"
            )
        if "migrations" not in tables or "collections" not in tables:
            raise StoreUnreadable(f"{SQLITE_FILE} has no Chroma schema (tables: {', '.join(sorted(tables)) or 'none'})")
        migrations = [f"{d}/{f}" for d, f in conn.execute("select dir, filename from migrations order by dir, version")]
        inv["migrations"] = migrations
        # settings the creating client chose that every open must repeat (store_settings.toml)
        inv["store_settings"] = store_settings.detect(conn)
        inv["writer_range"] = store_settings.restrict(
            writers.writer_range(signals.read(root, conn)), inv["store_settings"]
        )
        inv["rust_era_migrations"] = writers.rust_era(migrations)
        inv["tenants"] = [r[0] for r in conn.execute("select id from tenants")] if "tenants" in tables else []
        inv["databases"] = (
            [{"id": i, "name": n, "tenant": t} for i, n, t in conn.execute("select id, name, tenant_id from databases")]
            if "databases" in tables
            else []
        )
        dbnames = {d["id"]: f"{d['tenant']}/{d['name']}" for d in inv["databases"]}
        ccols = _columns(conn, "collections")
        picked = [c for c in ("id", "name", "dimension", "database_id", "config_json_str") if c in ccols]
        collections = {}
        for row in conn.execute(f"select {', '.join(picked)} from collections order by name"):
            c = dict(zip(picked, row))
            collections[c["id"]] = {
                "name": c["name"],
                "id": c["id"],
                "dimension": c.get("dimension"),
                "database": dbnames.get(c.get("database_id"), c.get("database_id")),
                "metadata": {},
                "count": 0,
                "space": None,
                "config": _json(c.get("config_json_str")),
            }
        mcols = _columns(conn, "collection_metadata")
        vcols = [c for c in ("str_value", "int_value", "float_value", "bool_value") if c in mcols]
        for row in conn.execute(f"select collection_id, key, {', '.join(vcols)} from collection_metadata"):
            if row[0] in collections:
                collections[row[0]]["metadata"][row[1]] = _typed(row[2:], vcols)
        segments = _segments(conn)
        for seg_id, seg in segments.items():
            col = collections.get(seg["collection"])
            if col is not None:
                col.setdefault("segments", {})[seg["scope"].lower()] = seg_id
        for cid, n in conn.execute(
            "select s.collection, count(*) from embeddings e join segments s on e.segment_id = s.id "
            "group by s.collection"
        ):
            if cid in collections:
                collections[cid]["count"] = n
        for col in collections.values():
            col["space"] = distance_space(col["metadata"], col.get("config"))
        inv["collections"] = sorted(collections.values(), key=lambda c: (c["database"] or "", c["name"]))
        inv["wal"] = _wal(conn, tables, root)
        if "embeddings_queue" in tables:
            # the log's topic ends with the collection id in every release ("persistent://.../<id>")
            for topic, n in conn.execute("select topic, count(*) from embeddings_queue group by topic"):
                cid = str(topic or "").rsplit("/", 1)[-1]
                if cid in collections:
                    collections[cid]["log_rows"] = n
        inv["automatically_purge"] = _purge(conn, tables)
        inv["orphaned_fulltext_rows"] = _orphaned_fulltext(conn, tables)
        _segment_dirs(root, inv, segments, collections, files)
    finally:
        conn.close()


def _json(text: Any) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"unparsed": str(text)[:200]}


def _segments(conn: sqlite3.Connection) -> dict[str, dict]:
    cols = _columns(conn, "segments")
    picked = [c for c in ("id", "type", "scope", "collection") if c in cols]
    return {row[0]: dict(zip(picked, row)) for row in conn.execute(f"select {', '.join(picked)} from segments")}


def distance_space(metadata: dict | None, config: Any = None) -> str:
    """Distance space: 0.x keeps it in collection metadata, 1.x in the configuration JSON."""
    if isinstance((metadata or {}).get("hnsw:space"), str):
        return metadata["hnsw:space"]
    config = config or {}
    for section in ("hnsw", "spann", "hnsw_configuration", "spann_configuration"):
        part = config.get(section) if isinstance(config, dict) else None
        if isinstance(part, dict) and isinstance(part.get("space"), str):
            return part["space"]
    return "l2"


def _wal(conn: sqlite3.Connection, tables: set[str], root: Path) -> dict[str, int]:
    """The write-ahead log: rows still in ``embeddings_queue`` (Chroma's log) and SQLite's own -wal file."""
    out = {"rows": 0, "bytes": 0, "sqlite_wal_bytes": 0}
    if "embeddings_queue" in tables:
        rows, size = conn.execute(
            "select count(*), coalesce(sum(length(vector)), 0) + "
            "coalesce(sum(length(metadata)), 0) from embeddings_queue"
        ).fetchone()
        out["rows"], out["bytes"] = rows, size
    wal = root / f"{SQLITE_FILE}-wal"
    if wal.exists():
        out["sqlite_wal_bytes"] = wal.stat().st_size
    return out


def _orphaned_fulltext(conn: sqlite3.Connection, tables: set[str]) -> int | None:
    """Full-text rows whose record is gone: 0.4.6-0.4.24 leave one per deleted document,
    and a 1.x release that reuses the row id then refuses every write with a document."""
    if not {"embedding_fulltext_search_content", "embeddings"} <= tables:
        return None
    return conn.execute(
        "select count(*) from embedding_fulltext_search_content c "
        "where not exists (select 1 from embeddings e where e.id = c.id)"
    ).fetchone()[0]


def _purge(conn: sqlite3.Connection, tables: set[str]) -> bool | None:
    """None when the store predates the setting (0.4 and early 0.5 never purge the log)."""
    if "embeddings_queue_config" not in tables:
        return None
    row = conn.execute("select config_json_str from embeddings_queue_config").fetchone()
    config = _json(row[0]) if row else None
    return (
        bool(config.get("automatically_purge"))
        if isinstance(config, dict) and "automatically_purge" in config
        else None
    )


def _segment_dirs(
    root: Path, inv: dict[str, Any], segments: dict[str, dict], collections: dict[str, dict], files: dict[str, int]
) -> None:
    """Orphaned directories (no segment row: left by a deleted collection) and missing
    ones (a vector segment of a non-empty collection whose index is gone)."""
    dirs = {p.name for p in root.iterdir() if p.is_dir() and _UUID.match(p.name)}
    vector = {sid for sid, s in segments.items() if str(s.get("scope", "")).upper() == "VECTOR"}
    orphaned = sorted(dirs - set(segments))
    inv["orphaned_segment_dirs"] = [
        {"dir": d, "bytes": sum(v for k, v in files.items() if k.startswith(d + "/"))} for d in orphaned
    ]
    _pickles(root, inv, files)
    missing = []
    for sid in sorted(vector - dirs):
        col = collections.get(segments[sid].get("collection"))
        if col is not None and col["count"] > 0:
            log = col.get("log_rows", 0)
            missing.append(
                {
                    "segment": sid,
                    "collection": col["name"],
                    "records": col["count"],
                    "log_rows": log,
                    "recoverable": log >= col["count"],
                }
            )
    inv["missing_segment_dirs"] = missing
    for m in missing:
        if m["recoverable"]:
            inv.setdefault("notes", []).append(
                f"vector index directory {m['segment']}/ of {m['collection']!r} is missing; the log still holds "
                f"{m['log_rows']} entries for its {m['records']} record(s), so a release can rebuild it"
            )
        else:
            inv["problems"].append(
                f"collection {m['collection']!r} has {m['records']} record(s) but its vector "
                f"index directory {m['segment']}/ is missing and the log holds only "
                f"{m['log_rows']} entries: vectors are lost"
            )
    for d in dirs & vector:
        present = [f for f in SEGMENT_FILES if f"{d}/{f}" in files]
        if present and len(present) < len(SEGMENT_FILES):
            col = collections.get(segments[d].get("collection"), {})
            lost = sorted(set(SEGMENT_FILES) - set(present))
            inv["problems"].append(f"vector index {d}/ of {col.get('name', '?')!r} lacks {', '.join(lost)}")


def _pickles(root: Path, inv: dict[str, Any], files: dict[str, int]) -> None:
    """Pickles by size, and the ones that hold code or are not pickles at all, as problems.

    ``hostile_pickles``: ``[{"file", "segment", "references"}]``, files naming a
    callable outside the workers' allowlist; ``unreadable_pickles``:
    ``[{"file", "segment", "reason"}]``. Both are damage the store already has.
    """
    inv["pickles"] = {k: v for k, v in files.items() if k.endswith(pickles.SUFFIXES)}
    found = pickles.scan_store(root, inv["pickles"])
    inv.update(found)
    inv["problems"].extend(pickles.problem(e) for e in found["hostile_pickles"] + found["unreadable_pickles"])
