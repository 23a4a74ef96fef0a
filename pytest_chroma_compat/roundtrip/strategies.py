"""Hypothesis strategies for Chroma stores, usable on their own in any test suite.

Everything is drawn through Hypothesis (embeddings included), so examples
shrink and replay. What a release accepts comes from ``Capabilities``
measured on that release, never from a hand-written list:

    caps = capabilities.measure(Release("0.4.24"))
    @given(programs(caps))
    def test_my_app(program): ...

Strategies only generate operations a correct release must accept: ``add``
of new ids, ``update`` of existing ids, no empty metadata dicts (rejected
everywhere), no zero vectors in cosine collections (their direction is
undefined). Filters and queries are drawn from the model's final state, so
they hit real records.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import string
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from pytest_chroma_compat.engine.capabilities import Capabilities
from pytest_chroma_compat.roundtrip.model import SPACES, Op, StoreModel

# -- names and text -----------------------------------------------------------------------------

_NAME_CHARS = string.ascii_letters + string.digits + "._-"
_EDGE = string.ascii_letters + string.digits


def _valid_name(name: str) -> bool:
    if ".." in name:
        return False
    try:
        ipaddress.IPv4Address(name)
        return False
    except ValueError:
        return True


def collection_names() -> st.SearchStrategy[str]:
    """Names every release accepts: 3-63 chars of [A-Za-z0-9._-], alphanumeric at both ends,
    no '..', not an IPv4 address (the intersection of all releases' rules)."""
    return st.builds(
        lambda a, mid, b: a + mid + b,
        st.sampled_from(_EDGE),
        st.text(st.sampled_from(_NAME_CHARS), min_size=1, max_size=61),
        st.sampled_from(_EDGE),
    ).filter(_valid_name)


def _text_alphabet() -> st.SearchStrategy[str]:
    # no lone surrogates (not encodable) and no NUL (C strings end there)
    return st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


def record_ids(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(_text_alphabet(), min_size=1, max_size=max_size)


def documents() -> st.SearchStrategy[str]:
    return st.text(_text_alphabet(), min_size=0, max_size=60)


# -- vectors ------------------------------------------------------------------------------------


def _component() -> st.SearchStrategy[float]:
    """float32 values away from subnormals, so re-rounding stays a matter of ULPs."""
    magnitude = st.floats(float(np.float32(1e-3)), float(np.float32(1e3)), width=32, allow_subnormal=False)
    return st.one_of(st.just(0.0), magnitude, magnitude.map(lambda x: -x))


def embeddings(n: int, dim: int, space: str = "l2") -> st.SearchStrategy[np.ndarray]:
    row = st.lists(_component(), min_size=dim, max_size=dim)
    if space == "cosine":
        row = row.filter(lambda r: float(np.linalg.norm(np.asarray(r, np.float64))) > 1e-3)
    return st.lists(row, min_size=n, max_size=n).map(lambda rows: np.asarray(rows, dtype=np.float32).reshape(n, dim))


# -- metadata -----------------------------------------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(_text_alphabet(), min_size=1, max_size=30),
    "int": _INT64,
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
}
_LISTS = {"list_str": "str", "list_int": "int", "list_float": "float", "list_bool": "bool"}


def metadata_value(label: str) -> st.SearchStrategy[Any]:
    if label == "empty_str":
        return st.just("")
    if label in _LISTS:
        return st.lists(_SCALARS[_LISTS[label]], min_size=1, max_size=4)
    return _SCALARS[label]


def metadata_key() -> st.SearchStrategy[str]:
    # '$' opens an operator and 'chroma:'/'#' prefixes are reserved in some releases
    return st.text(_text_alphabet(), min_size=1, max_size=20).filter(
        lambda k: not k.startswith(("$", "#", "chroma:", "hnsw:"))
    )


def value_labels(caps: Capabilities) -> list[str]:
    return sorted(caps.metadata_types - {"empty_str", "none", "empty_list"})


@st.composite
def metadata_schema(draw: st.DrawFn, caps: Capabilities, max_keys: int = 4) -> dict[str, str]:
    """Keys with one value type each (per collection), so filters can be typed."""
    return draw(st.dictionaries(metadata_key(), st.sampled_from(value_labels(caps)), min_size=1, max_size=max_keys))


@st.composite
def metadatas(draw: st.DrawFn, schema: dict[str, str]) -> dict:
    keys = draw(st.lists(st.sampled_from(sorted(schema)), min_size=1, max_size=len(schema), unique=True))
    return {k: draw(metadata_value(schema[k])) for k in keys}


def collection_metadata(caps: Capabilities) -> st.SearchStrategy[dict]:
    """``hnsw:space`` plus a few user keys of the types the release keeps."""
    scalar = [lbl for lbl in value_labels(caps) if lbl in _SCALARS]
    user = st.dictionaries(metadata_key(), st.sampled_from(scalar).flatmap(metadata_value), max_size=2)
    return st.builds(lambda space, extra: {"hnsw:space": space, **extra}, st.sampled_from(SPACES), user)


# -- programs: a sequence of operations over several collections ---------------------------------


@dataclass
class Program:
    ops: list[Op]
    merge_updates: bool = True  # measured on the writing release

    @property
    def model(self) -> StoreModel:
        return StoreModel.from_ops(self.ops, self.merge_updates)

    def fingerprint(self) -> str:
        """Identity of the whole program, values and vectors included."""
        h = hashlib.sha256()
        for op in self.ops:
            h.update(
                json.dumps(
                    [op.kind, op.collection, op.ids, op.documents, op.metadatas, op.metadata], default=repr
                ).encode()
            )
            if op.embeddings is not None:
                h.update(np.ascontiguousarray(op.embeddings, dtype=np.float32).tobytes())
        h.update(str(self.merge_updates).encode())
        return h.hexdigest()

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        return "Program([\n" + "".join(f"  {op.describe()},\n" for op in self.ops) + "])"


@st.composite
def _batch(
    draw: st.DrawFn,
    kind: str,
    name: str,
    ids: list[str],
    dim: int,
    space: str,
    schema: dict[str, str],
    fields: set[str],
) -> Op:
    n = len(ids)
    return Op(
        kind=kind,
        collection=name,
        ids=ids,
        embeddings=draw(embeddings(n, dim, space)) if "embeddings" in fields else None,
        documents=draw(st.lists(documents(), min_size=n, max_size=n)) if "documents" in fields else None,
        metadatas=draw(st.lists(metadatas(schema), min_size=n, max_size=n)) if "metadatas" in fields else None,
    )


@st.composite
def programs(
    draw: st.DrawFn,
    caps: Capabilities,
    max_collections: int = 3,
    max_records: int = 12,
    max_ops: int = 5,
    max_dim: int = 6,
    extra_collection_metadata: dict | None = None,
) -> Program:
    """Create 1..max_collections collections, fill them, then add/upsert/update/delete/delete_collection."""
    names = draw(st.lists(collection_names(), min_size=1, max_size=max_collections, unique_by=lambda s: s.lower()))
    ops: list[Op] = []
    model = StoreModel(caps.merges_metadata_updates)
    shape: dict[str, tuple[int, str, dict]] = {}

    def emit(op: Op) -> None:
        ops.append(op)
        model.apply(op)

    for name in names:
        meta = draw(collection_metadata(caps))
        meta.update(extra_collection_metadata or {})
        dim = draw(st.integers(1, max_dim))
        shape[name] = (dim, meta["hnsw:space"], draw(metadata_schema(caps)))
        emit(Op("create", name, metadata=meta))
        n = draw(st.integers(0, max_records))
        ids = draw(st.lists(record_ids(), min_size=n, max_size=n, unique=True))
        if ids:
            optional = draw(st.sets(st.sampled_from(["documents", "metadatas"])))
            emit(draw(_batch("add", name, ids, *shape[name], {"embeddings"} | optional)))

    for _ in range(draw(st.integers(0, max_ops))):
        live = sorted(model.collections)
        if not live:
            break
        name = draw(st.sampled_from(live))
        existing = list(model.collections[name].records)
        kinds = ["add", "upsert"] + (["update", "delete"] if existing else []) + ["delete_collection"]
        kind = draw(st.sampled_from(kinds))
        if kind == "delete_collection":
            emit(Op("delete_collection", name))
            continue
        if kind == "delete":
            # the newest records half the time: deleting them frees row ids for reuse, which
            # is where stores break (0.4.6-0.4.24 leave full-text rows behind that 1.x trips on)
            newest = st.integers(1, len(existing)).map(lambda k: existing[-k:])  # noqa: B023  (drawn at once)
            chosen = st.lists(st.sampled_from(existing), min_size=1, unique=True)
            emit(Op("delete", name, ids=draw(st.one_of(newest, chosen))))
            continue
        if kind == "update":
            ids = draw(st.lists(st.sampled_from(existing), min_size=1, max_size=5, unique=True))
            fields = draw(st.sets(st.sampled_from(["embeddings", "documents", "metadatas"]), min_size=1))
            if "documents" in fields:  # without embeddings, 0.4-0.6 try to embed the new text
                fields.add("embeddings")
        else:
            fresh = st.lists(
                record_ids().filter(lambda i: i not in model.collections[name].records),  # noqa: B023  (drawn at once)
                min_size=1,
                max_size=4,
                unique=True,
            )
            ids = draw(fresh)
            if kind == "upsert" and existing:
                ids += [i for i in draw(st.lists(st.sampled_from(existing), max_size=3, unique=True)) if i not in ids]
            fields = {"embeddings"} | draw(st.sets(st.sampled_from(["documents", "metadatas"])))
        emit(draw(_batch(kind, name, ids, *shape[name], fields)))
    return Program(ops, caps.merges_metadata_updates)


# -- probes: filters and queries drawn from the final state ---------------------------------------


@dataclass
class Probes:
    filters: list[dict]  # {"collection", "where"?, "where_document"?}
    queries: list[dict]  # {"collection", "vector": np.ndarray, "k"}

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.filters, default=repr).encode())
        for q in self.queries:
            h.update(json.dumps([q["collection"], q["k"]]).encode())
            h.update(np.asarray(q["vector"], dtype=np.float32).tobytes())
        return h.hexdigest()


def _typed_keys(model: StoreModel, name: str) -> dict[str, tuple[str, list, bool]]:
    """key -> (scalar type, values seen, present in every record), for keys of one type."""
    records = list(model.collections[name].records.values())
    seen: dict[str, list] = {}
    for rec in records:
        for k, v in (rec.metadata or {}).items():
            seen.setdefault(k, []).append(v)
    out = {}
    for k, values in seen.items():
        types = {type(v) for v in values}
        if len(types) == 1 and types.pop() in (str, int, float, bool):
            out[k] = (type(values[0]).__name__, values, len(values) == len(records))
    return out


@st.composite
def where_filters(draw: st.DrawFn, model: StoreModel, name: str, caps: Capabilities) -> dict | None:
    keys = _typed_keys(model, name)
    if not keys:
        return None

    def simple(key: str) -> dict:
        kind, values, everywhere = keys[key]
        ops = ["$eq"] + (["$in"] if caps.operator("$in") else [])
        if kind in ("int", "float"):
            ops += ["$gt", "$gte", "$lt", "$lte"] if caps.operator("$gt") else []
        if everywhere:  # complements only where releases agree on records lacking the key
            ops += ["$ne"] + (["$nin"] if caps.operator("$nin") else [])
        op = draw(st.sampled_from(ops))
        value = draw(st.sampled_from(values))
        if op in ("$in", "$nin"):
            value = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique_by=repr))
        return {key: {op: value}}

    first = simple(draw(st.sampled_from(sorted(keys))))
    combine = [c for c in ("$and", "$or") if caps.operator(c)]
    if bool(combine) and draw(st.booleans()):  # bool(): mypy types `list and X` by the list
        second = simple(draw(st.sampled_from(sorted(keys))))
        return {draw(st.sampled_from(combine)): [first, second]}
    return first


@st.composite
def document_filters(draw: st.DrawFn, model: StoreModel, name: str, caps: Capabilities) -> dict | None:
    docs = [r.document for r in model.collections[name].records.values()]
    present = [d for d in docs if d]
    if not present or not caps.operator("$contains"):
        return None
    doc = draw(st.sampled_from(present))
    start = draw(st.integers(0, len(doc) - 1))
    needle = doc[start : start + draw(st.integers(1, 8))]
    ops = ["$contains"] + (
        ["$not_contains"] if caps.operator("$not_contains") and all(d is not None for d in docs) else []
    )
    return {draw(st.sampled_from(ops)): needle}


@st.composite
def probes(
    draw: st.DrawFn, model: StoreModel, caps: Capabilities, max_filters: int = 3, max_queries: int = 3
) -> Probes:
    filters: list[dict] = []
    queries: list[dict] = []
    for name in sorted(model.collections):
        col = model.collections[name]
        if not col.records:
            continue
        for _ in range(draw(st.integers(0, max_filters))):
            where = draw(where_filters(model, name, caps))
            wdoc = draw(document_filters(model, name, caps)) if draw(st.booleans()) else None
            if where or wdoc:
                filters.append({"collection": name, "where": where, "where_document": wdoc})
        stored = [r.embedding for r in col.records.values()]
        dim = stored[0].shape[0]
        for _ in range(draw(st.integers(1, max_queries))):
            if draw(st.booleans()):
                vector = draw(st.sampled_from(stored))
            else:
                vector = draw(embeddings(1, dim, col.space))[0]
            k = draw(st.integers(1, min(5, len(col.records))))
            queries.append({"collection": name, "vector": np.asarray(vector, dtype=np.float32), "k": k})
    return Probes(filters, queries)
