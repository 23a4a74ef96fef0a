"""Named checks comparing what a release shows of a store with the model.

Each invariant is computed twice: on the old release reading its own store
(before the upgrade) and on the new release after migration. A check fails
the upgrade when the new release is wrong where the old one was right, or
when the two releases disagree; when both are wrong in the same way the
result is ``pre-existing``: reported, but not caused by the upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.common.tolerances import (  # noqa: F401  (re-exported: their home before tolerances.py)
    MAX_METADATA_ULPS,
    MAX_ULPS,
    describe_change,
    float32_ulps,
    values_close,
)
from pytest_chroma_compat.engine.client import Client, Collection
from pytest_chroma_compat.roundtrip.model import StoreModel

RECALL = 0.9
DISTANCE_RTOL = 1e-3
DISTANCE_ATOL = 1e-4

INVARIANTS = (
    "open",
    "collections",
    "count",
    "ids",
    "documents",
    "metadata",
    "embeddings",
    "filters",
    "query",
    "writable",
)


@dataclass
class Outcome:
    name: str
    status: str  # pass | fail | pre-existing | error
    detail: str = ""
    evidence: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


@dataclass
class View:
    """Everything one release reports about a store, read once, compared many times."""

    release: str
    error: str | None = None
    collections: dict[str, dict] = field(default_factory=dict)  # name -> metadata, count, records
    filters: list[Any] = field(default_factory=list)  # set of ids, or an error string
    queries: list[Any] = field(default_factory=list)  # (ids, distances), or an error string


def _err(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def observe(client: Client, probes: Any, batch_size: int = 500) -> View:
    view = View(client.release.version)
    try:
        for name in client.list_collection_names():
            col = client.get_collection(name)
            records: dict[str, tuple] = {}
            for batch in col.export(batch_size=batch_size):
                embs = (
                    np.asarray(batch["embeddings"], dtype=np.float32) if batch.get("embeddings") is not None else None
                )
                for i, rid in enumerate(batch["ids"]):
                    records[rid] = (None if embs is None else embs[i], batch["documents"][i], batch["metadatas"][i])
            view.collections[name] = {"metadata": col.metadata, "count": col.count(), "records": records}
    except (ChromaError, WorkerError) as exc:
        view.error = _err(exc)
        return view
    for f in probes.filters:
        try:
            got = Collection(client, {"name": f["collection"], "id": ""}).get(
                where=f["where"], where_document=f["where_document"], include=[]
            )
            view.filters.append(set(got["ids"]))
        except (ChromaError, WorkerError) as exc:
            view.filters.append(f"error: {_err(exc)}")
    for q in probes.queries:
        try:
            got = Collection(client, {"name": q["collection"], "id": ""}).query(
                query_embeddings=q["vector"][None, :], n_results=q["k"], include=["distances"]
            )
            view.queries.append((got["ids"][0], list(got["distances"][0])))
        except (ChromaError, WorkerError) as exc:
            view.queries.append(f"error: {_err(exc)}")
    return view


# -- the invariants: each returns (ok, detail, evidence) for one view --------------------------------


def _expected_collections(model: StoreModel) -> dict[str, Any]:
    return {name: col.metadata for name, col in model.collections.items()}


def check_collections(model: StoreModel, view: View) -> tuple[bool, str, dict]:
    want = _expected_collections(model)
    got = {name: c["metadata"] for name, c in view.collections.items()}
    if set(want) != set(got):
        return (
            False,
            "collection names differ",
            {"missing": sorted(set(want) - set(got)), "unexpected": sorted(set(got) - set(want))},
        )
    changed = {n: {"expected": want[n], "got": got[n]} for n in want if (want[n] or {}) != (got[n] or {})}
    if changed:
        return False, f"collection metadata changed in {len(changed)} collection(s)", {"changed": changed}
    return True, f"{len(want)} collection(s) with their metadata", {}


def _per_collection(model: StoreModel, view: View, compare: Callable) -> tuple[bool, str, dict]:
    bad: dict[str, Any] = {}
    notes = []
    for name, col in model.collections.items():
        if name not in view.collections:
            continue  # reported by check_collections
        ok, note, evidence = compare(col, view.collections[name])
        if note:
            notes.append(note)
        if not ok:
            bad[name] = evidence
    return not bad, "; ".join(notes), bad


def check_count(model: StoreModel, view: View) -> tuple[bool, str, dict]:
    def compare(col, seen):
        ok = seen["count"] == len(col.records) == len(seen["records"])
        return ok, "", {"expected": len(col.records), "count()": seen["count"], "records read": len(seen["records"])}

    return _per_collection(model, view, compare)


def check_ids(model: StoreModel, view: View) -> tuple[bool, str, dict]:
    def compare(col, seen):
        want, got = set(col.records), set(seen["records"])
        return want == got, "", {"missing": sorted(want - got)[:5], "unexpected": sorted(got - want)[:5]}

    return _per_collection(model, view, compare)


def _field_check(index: int, normalise: Callable[[Any], Any], label: str):
    def check(model: StoreModel, view: View) -> tuple[bool, str, dict]:
        changes: list[str] = []
        worst = [0]

        def compare(col, seen):
            diffs = []
            for rid, rec in col.records.items():
                if rid not in seen["records"]:
                    continue
                want = normalise((rec.embedding, rec.document, rec.metadata)[index])
                got = normalise(seen["records"][rid][index])
                if not values_close(want, got, worst):
                    diffs.append({"id": rid, "expected": want, "got": got})
                    changes.append(describe_change(want, got))
            return not diffs, "", {f"{label} differ": diffs[:5], "records affected": len(diffs)}

        ok, _, evidence = _per_collection(model, view, compare)
        detail = f"{len(changes)} record(s): {changes[0]}" if changes else ""
        if worst[0]:
            detail = (detail + "; " if detail else "") + (
                f"float values re-rounded by up to {worst[0]} ULP of float64 (tolerance {MAX_METADATA_ULPS})"
            )
            evidence = {**evidence, "max_float_ulps": worst[0]}
        return ok, detail, evidence

    return check


def _types(value: Any) -> Any:
    """The type shape of a value: a bool that came back as 1 differs here."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


check_documents = _field_check(1, lambda d: d, "documents")
# no metadata and {} both mean "no metadata"; a release may return either
check_metadata = _field_check(2, lambda m: m or None, "metadata")


def check_embeddings(model: StoreModel, view: View) -> tuple[bool, str, dict]:
    worst = {"max_abs": 0.0, "max_ulps": 0}

    def compare(col, seen):
        bad = []
        for rid, rec in col.records.items():
            got = seen["records"].get(rid)
            if got is None:
                continue
            if got[0] is None or got[0].shape != rec.embedding.shape:
                bad.append(
                    {
                        "id": rid,
                        "expected_shape": list(rec.embedding.shape),
                        "got_shape": None if got[0] is None else list(got[0].shape),
                    }
                )
                continue
            ulps = int(float32_ulps(rec.embedding, got[0]).max(initial=0))
            worst["max_abs"] = max(worst["max_abs"], float(np.abs(rec.embedding - got[0]).max(initial=0)))
            worst["max_ulps"] = max(worst["max_ulps"], ulps)
            if ulps > MAX_ULPS:
                bad.append({"id": rid, "ulps": ulps, "expected": rec.embedding.tolist(), "got": got[0].tolist()})
        return not bad, "", {"beyond tolerance": bad[:3], "records affected": len(bad)}

    ok, _, evidence = _per_collection(model, view, compare)
    note = f"largest difference {worst['max_abs']:.3g} ({worst['max_ulps']} ULP; tolerance {MAX_ULPS} ULP)"
    return ok, note, {**evidence, "largest": worst} if not ok else {"largest": worst}


def check_filters(model: StoreModel, view: View, probes: Any) -> tuple[bool, str, dict]:
    bad = []
    for f, got in zip(probes.filters, view.filters):
        if f["collection"] not in model.collections:
            continue
        want = model.where(f["collection"], f["where"], f["where_document"])
        if got != want:
            bad.append(
                {
                    "collection": f["collection"],
                    "where": f["where"],
                    "where_document": f["where_document"],
                    "expected": sorted(want)[:10],
                    "got": got if isinstance(got, str) else sorted(got)[:10],
                }
            )
    if bad:
        b = bad[0]
        clause = {k: b[k] for k in ("where", "where_document") if b[k] is not None}
        return (
            False,
            (
                f"{len(bad)} of {len(probes.filters)} filter(s) answer differently; first: {clause} "
                f"expected {b['expected']} got {b['got']}"
            ),
            {"mismatches": bad[:5]},
        )
    return True, f"{len(probes.filters)} filter(s)", {}


def _query_answers(model: StoreModel, view: View, probes: Any) -> list[dict]:
    """One entry per probe query of a collection the model holds: ``{"recall", "ok": True}`` when
    answered right, else what was wrong (an error, or the ids, recall and distances)."""
    out: list[dict] = []
    for q, got in zip(probes.queries, view.queries):
        name = q["collection"]
        if name not in model.collections:
            continue
        if isinstance(got, str):
            out.append({"collection": name, "k": q["k"], "error": got})
            continue
        ids, dists = got
        exact_ids, exact_d = model.nearest(name, q["vector"], q["k"])
        kth = exact_d[-1] if len(exact_d) else 0.0
        known = [i for i in ids if i in model.collections[name].records]
        mine = model.distances_to(name, q["vector"], known) if known else np.zeros(0)
        # an id counts as correct when it is as close as the k-th true neighbour (ties are fine)
        tol = DISTANCE_ATOL + DISTANCE_RTOL * abs(kth)
        hits = sum(1 for d in mine if d <= kth + tol)
        recall = hits / len(exact_ids) if exact_ids else 1.0  # nothing to find, nothing found: not a miss
        off = [
            (i, float(d), float(m))
            for i, d, m in zip(known, dists, mine)
            if abs(d - m) > DISTANCE_ATOL + DISTANCE_RTOL * abs(m)
        ]
        entry = {
            "collection": name,
            "k": q["k"],
            "expected": exact_ids,
            "got": ids,
            "recall": recall,
            "distance mismatches (id, got, exact)": off[:3],
            "unknown ids": len(ids) - len(known),
        }
        bad = len(ids) != len(exact_ids) or recall < RECALL or off or len(known) != len(ids)
        out.append(entry if bad else {"recall": recall, "ok": True})
    return out


def check_query(model: StoreModel, view: View, probes: Any) -> tuple[bool, str, dict]:
    answers = _query_answers(model, view, probes)
    recalls = [a["recall"] for a in answers if "recall" in a]
    bad = [{k: v for k, v in a.items() if k != "unknown ids"} for a in answers if not a.get("ok")]
    mean = float(np.mean(recalls)) if recalls else 1.0
    detail = f"{len(probes.queries)} quer(ies), mean recall {mean:.2f}"
    if bad:
        b = bad[0]
        first = b.get("error") or f"expected {b['expected']} got {b['got']}"
        detail = f"{len(bad)} of {detail}; first in {b['collection']!r} (k={b['k']}): {first}"
    return not bad, detail, {"mismatches": bad[:5]} if bad else {}


# how much better the target's own store may answer before a low recall counts against the upgrade
RECALL_MARGIN = 0.1


def shared_low_recall(model: StoreModel, migrated: View, own: View, probes: Any) -> tuple[float, float] | None:
    """(mean recall on the migrated store, on the target's own store) when the migrated store's query
    failures are only low recall and the target answers no better (within ``RECALL_MARGIN``, mean over
    the queries) on the same data it wrote itself; else None.

    Why not equal evidence, as for the other invariants: an approximate index returns other
    neighbours on every build (measured: 1.5.9 with ``hnsw:M`` 2 gives mean recall 0.14-0.26 on one
    data set, run to run), so a target whose index misses as much on its own store never matched.
    A wrong distance, an error or an id the store never held is not recall: those stay exact.
    """
    mine, theirs = _query_answers(model, migrated, probes), _query_answers(model, own, probes)
    if len(mine) != len(theirs) or all(a.get("ok") for a in mine):
        return None
    for a in mine:
        if a.get("ok"):
            continue
        if "error" in a or a["distance mismatches (id, got, exact)"] or a["unknown ids"]:
            return None
    if any("error" in a for a in theirs):
        return None
    mean_mine = float(np.mean([a["recall"] for a in mine]))
    mean_own = float(np.mean([a["recall"] for a in theirs]))
    return (mean_mine, mean_own) if mean_own < RECALL and mean_own <= mean_mine + RECALL_MARGIN else None


CHECKS: dict[str, Callable[..., tuple[bool, str, dict]]] = {
    "collections": check_collections,
    "count": check_count,
    "ids": check_ids,
    "documents": check_documents,
    "metadata": check_metadata,
    "embeddings": check_embeddings,
    "filters": check_filters,
    "query": check_query,
}


def evaluate(model: StoreModel, old_view: Callable[[], View | None], new: View, probes: Any) -> list[Outcome]:
    """Every read invariant for the new view, attributed against the old view.

    ``old_view`` is called only when an invariant fails: reading the store
    through the old release too would double the cost of every passing example.
    """
    if new.error:
        return [Outcome("open", "error", f"chromadb {new.release} could not read the migrated store: {new.error}")]
    out = [Outcome("open", "pass", f"chromadb {new.release} opened the store")]
    for name, check in CHECKS.items():
        args = (model, new, probes) if name in ("filters", "query") else (model, new)
        ok, detail, evidence = check(*args)
        if ok:
            out.append(Outcome(name, "pass", detail, evidence))
            continue
        status = "fail"
        old = old_view()
        if old is not None and not old.error:
            old_args = (model, old, probes) if name in ("filters", "query") else (model, old)
            old_ok, _, old_evidence = check(*old_args)
            if not old_ok and _same(old_evidence, evidence):
                status = "pre-existing"
                detail = (
                    f"pre-existing in {old.release}: {detail}; chromadb {old.release} answered the same "
                    f"on its own store before the upgrade"
                )
        out.append(Outcome(name, status, detail, evidence))
    return out


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)


def _probed_dimension(probes: Any, name: str) -> int | None:
    """The dimension of the harness's own query vectors for a collection the model never wrote to.

    Why: chromadb 1.0.0 fixes an empty collection's dimension at its first *query* (measured: a 1-d
    query, then a 2-d add raises "expecting embedding with dimension of 1"; 1.0.21, 1.5.9 and 0.6.3
    accept it). The query check runs first, so a write check in any other dimension failed on the
    harness's own doing: an UNSAFE no user data caused (0.3.29 -> 1.0.0, whose old release refused
    the example's only add)."""
    for q in getattr(probes, "queries", None) or ():
        if q["collection"] == name:
            return int(np.asarray(q["vector"]).reshape(-1).shape[0])
    return None


def check_writable(client: Client, model: StoreModel, probes: Any = None) -> Outcome:
    """The new release must accept writes to the migrated store through every call, read back exactly
    what it was given and undo it, in every collection (emptied and never-written ones too: the model
    knows the dimension each keeps, else the query check's vectors fixed it); and create a new collection.

    Any failure fails the example ("error" when a call raised, as before): generated data holds
    nothing the old release did not accept, so there is no defect of the store to set apart.
    """
    from pytest_chroma_compat.roundtrip.write_probe import probe

    failures: dict[str, Any] = {}
    first = None
    for name, col in model.collections.items():
        done = probe(Collection(client, {"name": name, "id": ""}), col.dim or _probed_dimension(probes, name))
        if done.failed:
            failures[name] = done.evidence
            first = first or (name, done)
    if first is not None:
        name, done = first
        more = f" (and {len(failures) - 1} other collection(s))" if len(failures) > 1 else ""
        return Outcome("writable", "error" if done.raised else "fail", f"{name!r}{more}: {done.detail}", failures)
    try:
        client.create_collection("chroma-compat-new-collection").add(
            ids=["x"], embeddings=np.ones((1, 2), dtype=np.float32), documents=["a new collection"]
        )
    except (ChromaError, WorkerError) as exc:
        return Outcome("writable", "error", f"creating a collection and writing to it failed: {_err(exc)}")
    return Outcome(
        "writable",
        "pass",
        f"add, upsert, update and delete read back exactly and undone in "
        f"{len(model.collections)} collection(s); a new collection written",
    )
