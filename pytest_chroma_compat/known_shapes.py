"""Stores shaped like the ones that broke real upgrades, checked before Hypothesis draws anything.

Why: a verdict must not depend on what a Hypothesis release happens to draw from
a seed. Measured: with ``--chroma-seed=0`` and 8 examples, Hypothesis 6.155
drew a delete of a record with a document in example 2 and found finding 1
(0.4.x -> 1.x), while Hypothesis 6.170 drew none in 8 and called the same
upgrade safe. These shapes always run first, on every path, so the known
breakages are found whatever is drawn after them; Hypothesis still explores.

Each shape is data: a name, what it reproduces, and a program of real calls
with the structure of a receipts application (one store per collection, L2,
long structured ids, str/int/float metadata, batched ``upsert``, single-record
``update``, ``$and`` filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .model import Op
from .strategies import Probes, Program

COLLECTION = "receipt-words"


@dataclass(frozen=True)
class Shape:
    name: str
    reproduces: str
    build: Callable[[dict], tuple[list[Op], list[dict]]]  # collection metadata -> (ops, filters)


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"IMAGE#3f6a2c9e-{i:04d}#RECEIPT#00001#LINE#{i % 7:05d}#WORD#{i % 3:05d}" for i in range(start, start + n)]


def _vectors(n: int, start: int = 0) -> np.ndarray:
    rows = [[np.float32((i * 7 % 11) / 11.0), np.float32((i * 5 % 13) / 13.0), np.float32(1.0)]
            for i in range(start, start + n)]
    return np.asarray(rows, dtype=np.float32)


def _metadatas(n: int, start: int = 0) -> list[dict]:
    return [{"merchant": f"m{i % 3}", "line": i, "total": round(1.25 * i, 2)} for i in range(start, start + n)]


def _deleted_document(meta: dict) -> tuple[list[Op], list[dict]]:
    """Finding 1: 0.4.6-0.4.24 leave a full-text row behind when a record with a document is deleted."""
    ids = _ids(3)
    ops = [Op("create", COLLECTION, metadata=meta),
           Op("add", COLLECTION, ids, _vectors(3), [f"TOTAL {i} 12.50" for i in range(3)], _metadatas(3)),
           Op("delete", COLLECTION, ids=ids[-1:])]
    return ops, [{"collection": COLLECTION, "where": None, "where_document": {"$contains": "TOTAL 1"}}]


def _application(meta: dict) -> tuple[list[Op], list[dict]]:
    """The receipts application's own calls: batched upsert, a single-record update, an $and filter."""
    ids = _ids(6)
    ops = [Op("create", COLLECTION, metadata=meta),
           Op("upsert", COLLECTION, ids, _vectors(6), [f"word {i}" for i in range(6)], _metadatas(6)),
           Op("update", COLLECTION, ids[2:3], _vectors(1, 20), ["word two, corrected"],
              [{"merchant": "m2", "line": 2, "total": 99.5}]),
           Op("upsert", COLLECTION, ids[4:] + _ids(2, 6), _vectors(4, 30), [f"again {i}" for i in range(4)],
              _metadatas(4, 4))]
    where = {"$and": [{"merchant": {"$eq": "m1"}}, {"line": {"$in": [1, 4, 7]}}, {"total": {"$gte": 1.0}}]}
    return ops, [{"collection": COLLECTION, "where": where, "where_document": None}]


SHAPES: tuple[Shape, ...] = (
    Shape("deleted-document", "0.4.x -> 1.x: writes fail after a record with a document was deleted",
          _deleted_document),
    Shape("receipts-application", "batched upsert, single update and $and filters of a real application",
          _application),
)


def cases(collection_metadata: dict, merge_updates: bool) -> list[tuple[Shape, Program, Probes]]:
    """Every shape as a (program, probes) pair for one path's collection metadata."""
    out = []
    for shape in SHAPES:
        ops, filters = shape.build({"hnsw:space": "l2", **collection_metadata})
        program = Program(ops, merge_updates)
        model = program.model
        vectors = [rec.embedding for rec in model.collections[COLLECTION].records.values()][:1]
        queries = [{"collection": COLLECTION, "vector": np.asarray(v, dtype=np.float32), "k": 3} for v in vectors]
        out.append((shape, program, Probes(filters, queries)))
    return out
