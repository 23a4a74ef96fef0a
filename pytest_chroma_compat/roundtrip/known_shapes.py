"""Stores shaped like the ones that broke real upgrades, checked before Hypothesis draws anything.

Why: a verdict must not depend on what a Hypothesis release happens to draw from
a seed. Measured: with ``--chroma-seed=0`` and 8 examples, Hypothesis 6.155
drew a delete of a record with a document in example 2 and found finding 1
(0.4.x -> 1.x), while Hypothesis 6.170 drew none in 8 and called the same
upgrade safe. These shapes always run first, on every path, so the known
breakages are found whatever is drawn after them; Hypothesis still explores.

Every finding the README lists ("What it found") that depends on what a store holds has a shape
here (a deleted document, ordinary floats filtered on their own values, 1.5.x's list-metadata
leak), with fixed values measured to reproduce it: never a draw. A shape the writing release
cannot write (list metadata before 1.5) is skipped by its ``needs``. Measured cost per pair with
all three paths: about 5 s for the float shape and 7 s for the leak (most of it the unflushed-wal
path's killed writer), on this project's 2-core machine.

Each shape is data: a name, what it reproduces, and a program of real calls
with the structure of a receipts application (one store per collection, L2,
long structured ids, str/int/float metadata, batched ``upsert``, single-record
``update``, ``$and`` filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pytest_chroma_compat.roundtrip.model import Op
from pytest_chroma_compat.roundtrip.strategies import Probes, Program

COLLECTION = "receipt-words"


@dataclass(frozen=True)
class Shape:
    name: str
    reproduces: str
    build: Callable[[dict], tuple[list[Op], list[dict]]]  # collection metadata -> (ops, filters)
    #: metadata types (capability labels) the writing release must keep, else the shape does not apply
    needs: frozenset[str] = frozenset()


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"IMAGE#3f6a2c9e-{i:04d}#RECEIPT#00001#LINE#{i % 7:05d}#WORD#{i % 3:05d}" for i in range(start, start + n)]


def _vectors(n: int, start: int = 0) -> np.ndarray:
    rows = [
        [np.float32((i * 7 % 11) / 11.0), np.float32((i * 5 % 13) / 13.0), np.float32(1.0)]
        for i in range(start, start + n)
    ]
    return np.asarray(rows, dtype=np.float32)


def _metadatas(n: int, start: int = 0) -> list[dict]:
    return [{"merchant": f"m{i % 3}", "line": i, "total": round(1.25 * i, 2)} for i in range(start, start + n)]


def _deleted_document(meta: dict) -> tuple[list[Op], list[dict]]:
    """Finding 1: 0.4.6-0.4.24 leave a full-text row behind when a record with a document is deleted."""
    ids = _ids(3)
    ops = [
        Op("create", COLLECTION, metadata=meta),
        Op("add", COLLECTION, ids, _vectors(3), [f"TOTAL {i} 12.50" for i in range(3)], _metadatas(3)),
        Op("delete", COLLECTION, ids=ids[-1:]),
    ]
    return ops, [{"collection": COLLECTION, "where": None, "where_document": {"$contains": "TOTAL 1"}}]


def _application(meta: dict) -> tuple[list[Op], list[dict]]:
    """The receipts application's own calls: batched upsert, a single-record update, an $and filter."""
    ids = _ids(6)
    ops = [
        Op("create", COLLECTION, metadata=meta),
        Op("upsert", COLLECTION, ids, _vectors(6), [f"word {i}" for i in range(6)], _metadatas(6)),
        Op(
            "update",
            COLLECTION,
            ids[2:3],
            _vectors(1, 20),
            ["word two, corrected"],
            [{"merchant": "m2", "line": 2, "total": 99.5}],
        ),
        Op(
            "upsert",
            COLLECTION,
            ids[4:] + _ids(2, 6),
            _vectors(4, 30),
            [f"again {i}" for i in range(4)],
            _metadatas(4, 4),
        ),
    ]
    where = {"$and": [{"merchant": {"$eq": "m1"}}, {"line": {"$in": [1, 4, 7]}}, {"total": {"$gte": 1.0}}]}
    return ops, [{"collection": COLLECTION, "where": where, "where_document": None}]


# Ordinary ``random.random()`` values (seed 20261207) whose own ``$eq`` misses once 1.x opens a 0.x store
# in place (measured on 0.5.23 -> 1.0.21 and 0.5.23 -> 1.5.9: 40 of 400 such values miss ``$eq``, 15
# ``$gte`` and 25 ``$lte``; the same values written by 1.x itself, or exported and imported, match).
# Fixed values known to miss, not a draw: a verdict on finding 2 must not depend on chance.
MISS_EQ_GTE = (0.9560197081789759, 0.9698014214389515, 0.47990036787849477, 0.9316407189280631, 0.10782061597211179)
MISS_EQ_LTE = (0.9313726775430681, 0.011393023028328897, 0.20006345514049761, 0.43606004212912763, 0.054145169683895156)
MATCH = (0.7883169584133266, 0.14457665490244875, 0.6464409033116452)  # found either way: the filter itself works
FLOATS = "receipt-totals"


def _float_filters(meta: dict) -> tuple[list[Op], list[dict]]:
    """Finding 2: 0.5/0.6 -> 1.x in place, ``$eq``/``$gte``/``$lte`` on a stored float miss its own record."""
    values = MISS_EQ_GTE + MISS_EQ_LTE + MATCH
    ids = _ids(len(values))
    ops = [
        Op("create", FLOATS, metadata=meta),
        Op(
            "add",
            FLOATS,
            ids,
            _vectors(len(values)),
            None,
            [{"merchant": f"m{i % 3}", "total": v} for i, v in enumerate(values)],
        ),
    ]
    filters = [
        {"collection": FLOATS, "where": {"total": {op: v}}, "where_document": None}
        for v in values
        for op in ("$eq", "$gte", "$lte")
    ]
    return ops, filters


def _list_metadata_leak(meta: dict) -> tuple[list[Op], list[dict]]:
    """chroma #7594 (1.5.9): ``delete_collection`` leaves the list metadata of its records behind, and the
    next record added to the store (here by the write check, in the collection that remains) reads them
    back as its own. Measured: the kept collection's record written first, so the deleted records hold the
    highest row ids and the next add reuses one. Deleting the records alone (``delete``) leaked nothing."""
    gone = COLLECTIONS[2]
    ops = [
        Op("create", COLLECTION, metadata=meta),
        Op("add", COLLECTION, _ids(1), _vectors(1), ["kept"], _metadatas(1)),
        Op("create", gone, metadata=meta),
        Op("add", gone, _ids(2, 10), _vectors(2, 10), None, [{"tags": ["receipt", "paid"]}, {"tags": ["refund"]}]),
        Op("delete_collection", gone),
    ]
    return ops, [{"collection": COLLECTION, "where": {"merchant": {"$eq": "m0"}}, "where_document": None}]


#: every collection a shape writes: a drawn example never uses these names together with the shapes' data
COLLECTIONS = (COLLECTION, FLOATS, "receipt-tags")

SHAPES: tuple[Shape, ...] = (
    Shape(
        "deleted-document", "0.4.x -> 1.x: writes fail after a record with a document was deleted", _deleted_document
    ),
    Shape(
        "float-filters",
        "0.5/0.6 -> 1.x in place: $eq/$gte/$lte on ordinary stored floats miss their own records",
        _float_filters,
    ),
    Shape(
        "list-metadata-leak",
        "1.5.9 (chroma #7594): a deleted collection's list metadata comes back on the next record added",
        _list_metadata_leak,
        frozenset({"list_str"}),
    ),
    Shape("receipts-application", "batched upsert, single update and $and filters of a real application", _application),
)


def applicable(metadata_types: frozenset[str] | None = None) -> tuple[Shape, ...]:
    """The shapes a writer keeping ``metadata_types`` can write (None: every shape)."""
    return tuple(s for s in SHAPES if metadata_types is None or s.needs <= metadata_types)


def cases(
    collection_metadata: dict, merge_updates: bool, metadata_types: frozenset[str] | None = None
) -> list[tuple[Shape, Program, Probes]]:
    """Every applicable shape as a (program, probes) pair for one path's collection metadata."""
    out = []
    for shape in applicable(metadata_types):
        ops, filters = shape.build({"hnsw:space": "l2", **collection_metadata})
        program = Program(ops, merge_updates)
        model = program.model
        first = next(iter(model.collections))
        vectors = [rec.embedding for rec in model.collections[first].records.values()][:1]
        queries = [{"collection": first, "vector": np.asarray(v, dtype=np.float32), "k": 3} for v in vectors]
        out.append((shape, program, Probes(filters, queries)))
    return out
