"""Migration paths: how a store written by one release reaches another.

- in-place: the new release opens a copy of the old release's directory
  (what ``pip install -U chromadb`` does to a persistent store);
- export-import: the old release streams every collection out in batches,
  the new release writes them into a fresh store;
- legacy: 0.3 wrote DuckDB + Parquet, which 0.4 and later open *without
  error* and show as empty; such stores are detected, and in-place opens them
  as they are (NOT SAFE, with the advice to export and import), never rerouted;
- unflushed-wal: the old release is stopped before it flushes its vector
  index (tiny ``hnsw:batch_size``/``hnsw:sync_threshold``, process killed),
  so the new release must replay the old write-ahead log.

The source directory is never opened by the new release: paths copy first.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from pytest_chroma_compat.common.errors import ChromaError, WorkerCrashed
from pytest_chroma_compat.common.scopes import DEFAULT_SCOPE, Scope, scope_label
from pytest_chroma_compat.engine.client import Client, Collection, Release
from pytest_chroma_compat.roundtrip.model import Op

PATHS = ("in-place", "export-import", "unflushed-wal")
# the smallest batch every release with these settings accepts (0.4-0.6 refuse 2)
UNFLUSHED_SETTINGS = {"hnsw:batch_size": 3, "hnsw:sync_threshold": 6}
LEGACY_MARKERS = ("chroma-collections.parquet", "chroma-embeddings.parquet")


def detect_format(path: Path) -> str:
    """``duckdb+parquet`` (0.3), ``sqlite`` (0.4 on), ``empty``, or ``unknown``; by file names only."""
    path = Path(path)
    if (path / "chroma.sqlite3").exists():
        return "sqlite"
    if any((path / m).exists() for m in LEGACY_MARKERS) or (path / "index").is_dir():
        return "duckdb+parquet"
    if not path.exists() or not any(path.iterdir()):
        return "empty"
    return "unknown"


def _collection(client: Client, name: str) -> Collection:
    # the worker finds collections by name; no round trip needed to make a proxy
    return Collection(client, {"name": name, "id": "", "metadata": None})


def apply(client: Client, op: Op) -> None:
    if op.kind == "create":
        client.create_collection(op.collection, metadata=op.metadata)
    elif op.kind == "delete_collection":
        client.delete_collection(op.collection)
    elif op.kind == "delete":
        _collection(client, op.collection).delete(ids=op.ids)
    else:
        getattr(_collection(client, op.collection), op.kind)(
            ids=op.ids, embeddings=op.embeddings, documents=op.documents, metadatas=op.metadatas
        )


def write(
    release: Release,
    path: Path,
    ops: list[Op],
    *,
    abandon: bool = False,
    refused: list[tuple[Op, ChromaError]] | None = None,
) -> list[Op]:
    """Apply ops with a persistent client, then close it, or with ``abandon`` kill the
    worker first so nothing buffered in memory reaches the disk; returns the ops applied.

    With ``refused`` (a list to fill), an op the release refuses is not raised: what the
    writer never stored cannot be lost by an upgrade, so the caller records the refusal as
    a finding about that release and judges the rest. A refused write may still have stored
    part of itself (0.3.29 adds an ``upsert``'s record with a control character in its id,
    then raises, and a later delete leaves a duplicate), so the store is written again from
    scratch without that op: the oracle built from the returned ops then matches the store."""
    todo = list(ops)
    while True:
        client = release.persistent(path)
        applied: list[Op] = []
        live: set[str] = set()  # a refused op on a missing collection stored nothing: no rewrite
        for i, op in enumerate(todo):
            try:
                apply(client, op)
            except ChromaError as exc:
                if refused is None:
                    raise
                refused.append((op, exc))
                if op.kind in ("create", "delete_collection") or op.collection not in live:
                    continue
                todo = applied + todo[i + 1 :]
                client.close()
                shutil.rmtree(path)
                break
            applied.append(op)
            if op.kind == "create":
                live.add(op.collection)
            elif op.kind == "delete_collection":
                live.discard(op.collection)
        else:
            break
    if not abandon:
        client.close()
        return applied
    try:
        release.call("debug", action="exit", seconds=0)
    except WorkerCrashed:
        pass  # expected: the worker is gone, the next call starts a fresh one
    release.prestart()  # that fresh one imports chromadb while the caller goes on (it touched no store)
    return applied


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def groups_by_fields(batch: dict) -> list[dict[str, Any]]:
    """Split an exported page by which fields each record has: releases reject a
    batch mixing ``None`` and values in ``documents`` or ``metadatas``."""
    import numpy as np

    groups: dict[tuple[bool, bool], list[int]] = {}
    docs, metas = batch.get("documents"), batch.get("metadatas")
    for i in range(len(batch["ids"])):
        key = (docs is not None and docs[i] is not None, metas is not None and metas[i] is not None)
        groups.setdefault(key, []).append(i)
    out = []
    for (has_doc, has_meta), idx in groups.items():
        out.append(
            {
                "ids": [batch["ids"][i] for i in idx],
                "embeddings": np.asarray(batch["embeddings"])[idx],
                "documents": [docs[i] for i in idx] if has_doc else None,
                "metadatas": [metas[i] for i in idx] if has_meta else None,
            }
        )
    return out


def export_import(
    old: Release,
    src: Path,
    new: Release,
    dst: Path,
    batch_size: int = 500,
    scopes: list[Scope] | None = None,
    keep: Callable[[Scope, str], bool] | None = None,
    settings: dict | None = None,
) -> dict:
    """Copy every collection of every database in ``scopes`` (default: the default database only),
    or those ``keep`` accepts, through both releases' public APIs; returns counts per collection.

    ``settings``: what the source store was created with (``snapshot/store_settings.py``), used
    for both stores, so the imported one keeps the choice (e.g. sha256 migration hashes)."""
    counts: dict[str, int] = {}
    scratch = dst.parent / f"{dst.name}-source-copy"
    copy_store(src, scratch)  # even the old release reads a copy: opening can migrate a store
    try:
        # clients stay open to the end, as clients of one store share its System; each is closed even if another fails
        with ExitStack() as opened:
            admin = opened.enter_context(new.persistent(dst, settings))
            for scope in scopes or [DEFAULT_SCOPE]:
                tenant, database = scope
                if scope != DEFAULT_SCOPE:
                    admin.ensure_database(tenant, database)
                source = opened.enter_context(old.persistent(scratch, settings, tenant=tenant, database=database))
                target = opened.enter_context(new.persistent(dst, settings, tenant=tenant, database=database))
                for name in source.list_collection_names():
                    if keep is not None and not keep(scope, name):
                        continue
                    info = source.get_collection(name)
                    target.create_collection(name, metadata=info.metadata)
                    dest = _collection(target, name)
                    label = scope_label(scope, name)
                    counts[label] = 0
                    for batch in info.export(batch_size=batch_size):
                        for group in groups_by_fields(batch):
                            dest.add(**group)
                        counts[label] += len(batch["ids"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return counts
