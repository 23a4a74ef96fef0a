"""The oracle: an in-Python model of what a store must hold after a sequence of operations.

Operations are plain data (``Op``), so a failing case can be saved to a file
and replayed. The model answers the same questions a release does: which
records exist, which match a ``where`` / ``where_document`` filter, and which
are the exact nearest neighbours of a vector (brute force, no index).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPACES = ("l2", "cosine", "ip")


@dataclass
class Op:
    kind: str  # create | add | upsert | update | delete | delete_collection
    collection: str
    ids: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None  # float32, one row per id
    documents: list[str] | None = None
    metadatas: list[dict] | None = None
    metadata: dict | None = None  # collection metadata, for create

    def describe(self) -> str:
        fields = [f for f in ("embeddings", "documents", "metadatas") if getattr(self, f) is not None]
        if self.kind == "create":
            return f"create {self.collection!r} metadata={self.metadata}"
        if self.kind == "delete_collection":
            return f"delete_collection {self.collection!r}"
        return f"{self.kind} {self.collection!r} ids={self.ids} with {','.join(fields) or 'ids only'}"


@dataclass
class Record:
    embedding: np.ndarray
    document: str | None = None
    metadata: dict | None = None


@dataclass
class CollectionModel:
    name: str
    metadata: dict | None
    records: dict[str, Record] = field(default_factory=dict)
    dim: int | None = None  # fixed by the first add, kept after every record is deleted

    @property
    def space(self) -> str:
        return (self.metadata or {}).get("hnsw:space", "l2")


class StoreModel:
    """``merge_updates``: whether the writing release merges metadata on update (measured)."""

    def __init__(self, merge_updates: bool = True) -> None:
        self.collections: dict[str, CollectionModel] = {}
        self.merge_updates = merge_updates

    @classmethod
    def from_ops(cls, ops: Iterable[Op], merge_updates: bool = True) -> StoreModel:
        model = cls(merge_updates)
        for op in ops:
            model.apply(op)
        return model

    def apply(self, op: Op) -> None:
        if op.kind == "create":
            self.collections[op.collection] = CollectionModel(op.collection, op.metadata)
            return
        if op.kind == "delete_collection":
            del self.collections[op.collection]
            return
        col = self.collections[op.collection]
        records = col.records
        if op.embeddings is not None and col.dim is None and len(op.ids):
            col.dim = int(np.asarray(op.embeddings).shape[1])
        for i, rid in enumerate(op.ids):
            emb = None if op.embeddings is None else np.asarray(op.embeddings[i], dtype=np.float32)
            doc = None if op.documents is None else op.documents[i]
            meta = None if op.metadatas is None else op.metadatas[i]
            if op.kind == "delete":
                records.pop(rid, None)
            elif op.kind == "add" or (op.kind == "upsert" and rid not in records):
                if rid not in records:
                    records[rid] = Record(emb, doc, dict(meta) if meta else None)
            elif op.kind in ("update", "upsert") and rid in records:
                rec = records[rid]
                if emb is not None:
                    rec.embedding = emb
                if op.documents is not None:
                    rec.document = doc
                if meta is not None:
                    rec.metadata = {**(rec.metadata or {}), **meta} if self.merge_updates else dict(meta)

    # -- questions a release must answer the same way -------------------------------------------
    def where(self, collection: str, where: dict | None = None, where_document: dict | None = None) -> set[str]:
        col = self.collections[collection]
        return {
            rid
            for rid, rec in col.records.items()
            if (where is None or match_where(rec.metadata, where))
            and (where_document is None or match_document(rec.document, where_document))
        }

    def nearest(self, collection: str, query: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
        """Exact neighbours by the collection's distance, ties broken by id."""
        col = self.collections[collection]
        ids = list(col.records)
        if not ids:
            return [], np.zeros(0)
        mat = np.stack([col.records[i].embedding for i in ids]).astype(np.float64)
        dist = distances(mat, np.asarray(query, dtype=np.float64), col.space)
        order = sorted(range(len(ids)), key=lambda j: (dist[j], ids[j]))[:k]
        return [ids[j] for j in order], dist[order]

    def distances_to(self, collection: str, query: np.ndarray, ids: list[str]) -> np.ndarray:
        col = self.collections[collection]
        mat = np.stack([col.records[i].embedding for i in ids]).astype(np.float64)
        return distances(mat, np.asarray(query, dtype=np.float64), col.space)


def distances(mat: np.ndarray, q: np.ndarray, space: str) -> np.ndarray:
    """Chroma's distances: squared L2, 1 - inner product, 1 - cosine similarity."""
    if space == "l2":
        return ((mat - q) ** 2).sum(axis=1)
    if space == "ip":
        return 1.0 - mat @ q
    norms = np.linalg.norm(mat, axis=1) * np.linalg.norm(q)
    return 1.0 - (mat @ q) / np.where(norms == 0, 1.0, norms)


def _same_type(a: Any, b: Any) -> bool:
    return type(a) is type(b)


def match_where(meta: dict | None, where: dict) -> bool:
    """Filter semantics of chromadb >= 0.5.12: ``$ne``/``$nin`` are exact complements."""
    for key, cond in where.items():
        if key == "$and":
            if not all(match_where(meta, c) for c in cond):
                return False
            continue
        if key == "$or":
            if not any(match_where(meta, c) for c in cond):
                return False
            continue
        if not isinstance(cond, dict):
            cond = {"$eq": cond}
        ((op, value),) = cond.items()
        present = meta is not None and key in meta
        x = meta.get(key) if present else None
        if op == "$eq":
            ok = present and _same_type(x, value) and x == value
        elif op == "$ne":
            ok = not (present and _same_type(x, value) and x == value)
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            ok = (
                present
                and _same_type(x, value)
                and {"$gt": x > value, "$gte": x >= value, "$lt": x < value, "$lte": x <= value}[op]
            )
        elif op == "$in":
            ok = present and any(_same_type(x, v) and x == v for v in value)
        elif op == "$nin":
            ok = not (present and any(_same_type(x, v) and x == v for v in value))
        else:
            raise ValueError(f"the model does not know operator {op}")
        if not ok:
            return False
    return True


def match_document(doc: str | None, where_document: dict) -> bool:
    ((op, value),) = where_document.items()
    if op == "$and":
        return all(match_document(doc, c) for c in value)
    if op == "$or":
        return any(match_document(doc, c) for c in value)
    if op == "$contains":
        return doc is not None and value in doc
    if op == "$not_contains":
        return doc is None or value not in doc
    raise ValueError(f"the model does not know document operator {op}")


# -- saving a case so `chroma-compat replay` can rerun it ---------------------------------------


def ops_to_json(ops: list[Op], arrays: list[np.ndarray]) -> list[dict]:
    """Ops as JSON; their vectors go to ``arrays`` (saved beside as .npy)."""
    out = []
    for op in ops:
        d = {
            "kind": op.kind,
            "collection": op.collection,
            "ids": op.ids,
            "documents": op.documents,
            "metadatas": op.metadatas,
            "metadata": op.metadata,
            "embeddings": None,
        }
        if op.embeddings is not None:
            d["embeddings"] = len(arrays)
            arrays.append(np.asarray(op.embeddings, dtype=np.float32))
        out.append(d)
    return out


def ops_from_json(items: list[dict], arrays: list[np.ndarray]) -> list[Op]:
    ops = []
    for d in items:
        emb = d.pop("embeddings")
        ops.append(Op(embeddings=None if emb is None else arrays[emb], **d))
    return ops


def save_arrays(npy: Path, arrays: list[np.ndarray]) -> list[list[int]]:
    """One flat float32 .npy for ragged arrays (dims differ per collection); returns the shapes."""
    flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
    np.save(npy, flat.astype(np.float32))
    return [list(a.shape) for a in arrays]


def load_arrays(npy: Path, shapes: list[list[int]]) -> list[np.ndarray]:
    flat = np.load(npy)
    out, at = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[at : at + n].reshape(shape))
        at += n
    return out
