"""One write through every call a release offers, read back exactly, then undone.

Why each call: a store can break one call and not another (after the 0.4.6-0.4.24
full-text defect, 1.x refuses ``add`` with a document while ``upsert`` of the
same record works), so one ``add`` says too little. Why read back exactly (ids,
document, metadata keys and value types, vector): a store can hand a new record
something it was never given (chroma issue #7594: a deleted collection's list
metadata rows come back on the record that reuses their row id), which a check
of ids and documents alone passes. Why undo and recount: the check runs on a
copy that is read again afterwards (rollback, a baseline), and a delete that
leaves something behind is itself a broken write.

Only str, int and float metadata are written: every release keeps them (0.4.0-0.4.3
refuse bools), so a refusal is the store's or the release's, never the harness's.
Vectors are unit length, so a release that normalises cosine vectors stores them
as given (within float32 rounding).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_chroma_compat.common.errors import ChromaError, HarnessFault, WorkerError
from pytest_chroma_compat.common.tolerances import MAX_ULPS, describe_change, float32_ulps, values_close
from pytest_chroma_compat.engine.client import Collection, pack_vectors

#: the dimension written to a collection that was never written (it accepts any)
FRESH_DIMENSION = 2
IDS = ("chroma-compat-write-check-add", "chroma-compat-write-check-upsert")
INCLUDE = ["embeddings", "documents", "metadatas"]


def _err(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split())[:300] if text else type(exc).__name__


def _record(dimension: int, turn: int, call: str) -> tuple[np.ndarray, str, dict]:
    """A unit vector, a document and flat str/int/float metadata that differ per call."""
    vec = np.zeros(dimension, dtype=np.float32)
    if dimension == 1:
        vec[0] = 1.0 if turn % 2 == 0 else -1.0
    else:
        vec[turn % dimension], vec[(turn + 1) % dimension] = 0.6, 0.8
    return vec, f"written by chroma-compat: {call}", {"chroma_compat": call, "step": turn + 1, "weight": turn + 0.5}


@dataclass
class Step:
    """One call and what reading back after it showed."""

    call: str  # as the evidence names it: "add with a document"
    error: str | None = None  # the call raised
    differs: str | None = None  # it returned, but reading back did not show what was written
    skipped: str | None = None  # not tried, and why

    @property
    def failed(self) -> bool:
        return self.error is not None or self.differs is not None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.call} failed: {self.error}"
        if self.differs is not None:
            return f"{self.call}: {self.differs}"
        return f"{self.call}: {self.skipped}" if self.skipped else f"{self.call}: ok"


@dataclass
class WriteProbe:
    """Everything one write check did to one collection."""

    dimension: int
    count_before: int | None = None
    count_after: int | None = None
    steps: list[Step] = field(default_factory=list)
    undo_error: str | None = None
    left_behind: list[str] = field(default_factory=list)
    error: str | None = None  # the collection could not even be counted before writing

    @property
    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.failed), None)

    @property
    def count_back(self) -> bool:
        return self.count_before is not None and self.count_after == self.count_before and not self.left_behind

    @property
    def failed(self) -> bool:
        return self.error is not None or self.first_failure is not None or not self.count_back

    @property
    def raised(self) -> bool:
        """The first failure is a call that raised (rather than one that returned a wrong answer)."""
        first = self.first_failure
        return (
            self.error is not None
            or (first is not None and first.error is not None)
            or (first is None and self.undo_error is not None)
        )

    @property
    def first_kind(self) -> str | None:
        """The first thing that went wrong, as "add with a document: raised": two runs that fail
        first the same way share it (what follows a failure may differ, and says less)."""
        if self.error is not None:
            return "count before writing: raised"
        first = self.first_failure
        if first is not None:
            return f"{first.call}: {'raised' if first.error is not None else 'read back differs'}"
        return None if self.count_back else "undo: count not back"

    @property
    def detail(self) -> str:
        if self.error is not None:
            return f"counting the collection before writing failed: {self.error}"
        written = f"{self.dimension}-d vector, a document, str/int/float metadata"
        if not self.failed:
            return (
                f"add, upsert of a new id, update of it and delete each read back exactly ({written}); "
                f"count back at {self.count_before}"
            )
        parts = []
        first = self.first_failure
        if first is not None:
            parts.append(first.describe())
            parts.append(self._afterwards(self.steps.index(first)))
        if self.undo_error is not None:
            same = first is not None and first.error == self.undo_error
            parts.append("undoing it failed the same way" if same else f"undoing it failed: {self.undo_error}")
        if not self.count_back:
            left = f" ({', '.join(self.left_behind)} still there)" if self.left_behind else ""
            parts.append(f"the count did not come back: {self.count_after}, was {self.count_before}{left}")
        return "; ".join(p for p in parts if p)

    def _afterwards(self, index: int) -> str:
        later = [s for s in self.steps[index + 1 :] if not s.skipped]
        if not later:
            return "it was the last call" if index == len(self.steps) - 1 else ""
        if all(s.failed for s in later):
            return f"writes fail afterwards ({', '.join(s.call for s in later)})"
        if not any(s.failed for s in later):
            return f"{', '.join(s.call for s in later)} work afterwards"
        return "afterwards: " + ", ".join(f"{s.call} {'fails' if s.failed else 'works'}" for s in later)

    @property
    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dimension": self.dimension,
            "count before": self.count_before,
            "count after": self.count_after,
            "calls": [{"call": s.call, "result": _outcome(s)} for s in self.steps],
        }
        if self.undo_error is not None:
            out["undo error"] = self.undo_error
        if self.left_behind:
            out["left behind"] = self.left_behind
        if self.error is not None:
            out["error"] = self.error
        return out


def _outcome(step: Step) -> str:
    if step.error is not None:
        return f"raised {step.error}"
    return step.differs or step.skipped or "ok"


def _differences(got: dict, expected: dict[str, tuple[np.ndarray, str, dict] | None]) -> list[str]:
    """What reading ``expected``'s ids back shows that differs from what was written (None: must be absent)."""
    ids = list(got.get("ids") or [])
    at = {rid: i for i, rid in enumerate(ids)}
    docs, metas = got.get("documents"), got.get("metadatas")
    embs = got.get("embeddings")
    out = []
    for rid in sorted(set(ids) - set(expected)):
        out.append(f"{rid!r} came back unasked")
    for rid, want in expected.items():
        i = at.get(rid)
        if want is None:
            if i is not None:
                out.append(f"{rid!r} is still there")
            continue
        if i is None:
            out.append(f"{rid!r} is missing")
            continue
        vec, doc, meta = want
        got_doc = None if docs is None else docs[i]
        if got_doc != doc or type(got_doc) is not type(doc):
            out.append(f"document of {rid!r}: {describe_change(doc, got_doc)}")
        got_meta = None if metas is None else metas[i]
        if not values_close(meta, got_meta, [0]):
            out.append(f"metadata of {rid!r}: {describe_change(meta, got_meta)}")
        got_vec = None if embs is None else np.asarray(embs[i], dtype=np.float32)
        if got_vec is None or got_vec.shape != vec.shape:
            out.append(
                f"vector of {rid!r} has shape {None if got_vec is None else list(got_vec.shape)}, "
                f"written {list(vec.shape)}"
            )
        else:
            ulps = int(float32_ulps(vec, got_vec).max(initial=0))
            if ulps > MAX_ULPS:
                out.append(
                    f"vector of {rid!r} is {ulps} float32 ULP off (tolerance {MAX_ULPS}): "
                    f"wrote {vec[:4].tolist()}, read {got_vec[:4].tolist()}"
                )
    return out


class _Run:
    """The state of one probe: what each id must read back as, or None (absent), or unknown."""

    def __init__(self, col: Collection, probe: WriteProbe, ids: tuple[str, str]) -> None:
        self.col, self.probe, self.ids = col, probe, ids
        self.expected: dict[str, tuple[np.ndarray, str, dict] | None] = dict.fromkeys(ids)
        self.unknown: set[str] = set()  # a call that raised may or may not have stored its record

    def step(self, call: str, method: str, rid: str | None, turn: int) -> None:
        step = Step(call)
        self.probe.steps.append(step)
        touched = [rid] if rid is not None else list(self.ids)
        try:
            if method == "delete":
                self.col.delete(ids=list(self.ids))
            else:
                vec, doc, meta = _record(self.probe.dimension, turn, method)
                getattr(self.col, method)(ids=[rid], embeddings=vec[None, :], documents=[doc], metadatas=[meta])
        except (ChromaError, WorkerError) as exc:
            step.error = _err(exc)
            self.unknown.update(touched)
            return
        for r in touched:
            self.expected[r] = None if method == "delete" else (vec, doc, meta)
            self.unknown.discard(r)
        step.differs = self.verify(touched)

    def verify(self, touched: list[str]) -> str | None:
        """Read the touched ids back, and the count; None when both are as written."""
        try:
            got = self.col.get(ids=touched, include=INCLUDE)
            count = self.col.count()
        except (ChromaError, WorkerError) as exc:
            return f"reading it back failed: {_err(exc)}"
        diffs = _differences(got, {r: self.expected[r] for r in touched})
        if not self.unknown:
            want = self.probe.count_before + sum(v is not None for v in self.expected.values())
            if count != want:
                diffs.append(f"count is {count}, expected {want}")
        return "read back differs: " + "; ".join(diffs) if diffs else None

    def undo(self) -> None:
        """Delete whatever may still be there, then recount: the collection must be as it was."""
        if self.unknown or any(v is not None for v in self.expected.values()):
            try:
                self.col.delete(ids=list(self.ids))
            except (ChromaError, WorkerError) as exc:
                self.probe.undo_error = _err(exc)
        try:
            self.probe.left_behind = list(self.col.get(ids=list(self.ids), include=[])["ids"])
            self.probe.count_after = self.col.count()
        except (ChromaError, WorkerError) as exc:
            self.probe.undo_error = self.probe.undo_error or f"recounting failed: {_err(exc)}"


CANDIDATES = [IDS if n == 0 else (f"{IDS[0]}-{n}", f"{IDS[1]}-{n}") for n in range(10)]


def _fallback_ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    return f"{IDS[0]}-{tag}", f"{IDS[1]}-{tag}"


def _free_ids(col: Collection, fallback: tuple[str, str]) -> tuple[str, str]:
    """Ids the collection does not hold: a store that already has ours (a user's, or a kept copy) gets others."""
    for ids in CANDIDATES:
        if not col.get(ids=list(ids), include=[])["ids"]:
            return ids
    return fallback


#: the calls of a probe and the record each writes: (method, turn); see ``_record`` and ``probe``
WRITES = {"add": 0, "upsert": 1, "update": 2}
_LIVE = object()


class Batch:
    """``col``, answering the probe's calls from one ``write_probe`` worker op (engine/worker/main.py) that
    made the same calls with the same arguments in the same order, then from ``col`` itself.

    Why: a probe is about 16 calls and each crossed the pipe (26 of the 48 calls of a round-trip example,
    issue 27); the op makes them in one round trip. Nothing of the check moves: ``probe`` runs unchanged
    against this object, each answer is the one the op of that name gave, and every call is checked
    against what the worker did (op and ids; a write's record too): a difference is the harness's fault.
    The op stops at the first call that raised (its error is raised here, at that call, as the call itself
    would: ``Worker.error``); every call after it goes to the worker one by one, as before. A crash during
    the op is raised at the call it happened in, and a timeout stops the check, as either did call by call
    (the worker's messages name that call)."""

    def __init__(self, col: Collection, dimension: int, fallback: tuple[str, str]) -> None:
        self.col = col
        self.worker = col.client.worker
        self.records = {m: _record(dimension, turn, m) for m, turn in WRITES.items()}
        self.events: deque[tuple[str, list | None, list | None, Any, dict | None, int]] = deque()
        self.failure: tuple[str | None, BaseException] | None = None
        sent = {
            m: {"embeddings": pack_vectors(vec[None, :]), "document": doc, "metadata": meta}
            for m, (vec, doc, meta) in self.records.items()
        }
        calling: dict | None = None
        stream = self.worker.stream(
            "write_probe",
            client=col.client.handle,
            collection=col.name,
            candidates=[list(c) for c in CANDIDATES],
            fallback=list(fallback),
            records=sent,
            include=INCLUDE,
        )
        try:
            for chunk in stream:
                if "calling" in chunk:
                    calling = {**chunk, "mark": self.worker.stderr_lines}
                    continue
                if calling is None:
                    raise HarnessFault(f"write check: the worker's write_probe answered no call it announced: {chunk}")
                error = chunk.get("error")
                self.events.append(
                    (
                        calling["calling"],
                        calling["ids"],
                        calling["include"],
                        chunk.get("result"),
                        error,
                        calling["mark"],
                    )
                )
                calling = None
        except WorkerError as exc:  # it died in the call it announced last: raised at that call (a timeout, a
            # HarnessFault, stops the check as when the call was made on its own)
            self.failure = (calling["calling"] if calling is not None else None, exc)
        except ChromaError:
            pass  # the op itself failed: what it recorded stands, the rest goes call by call

    def _answer(self, op: str, ids: list | None, include: list | None = None, record: tuple | None = None) -> Any:
        if self.events:
            name, done_ids, done_include, result, error, mark = self.events.popleft()
            if (name, done_ids, done_include) != (op, ids, include) or (
                record is not None and not _same_record(record, self.records[op])
            ):
                raise HarnessFault(
                    f"write check: the worker's write_probe made {name}({done_ids}, include={done_include}) "
                    f"where the check makes {op}({ids}, include={include}); a harness defect, not a finding"
                )
            if error is not None:
                raise self.worker.error(op, error, mark)
            return result
        if self.failure is not None:
            name, exc = self.failure
            self.failure = None
            if name is None or name == op:  # None: before its first call (the worker was gone already)
                raise exc
        return _LIVE

    def count(self) -> int:
        got = self._answer("count", None)
        return self.col.count() if got is _LIVE else got

    def get(self, ids: list[str], include: list[str]) -> dict:
        got = self._answer("get", ids, include)
        return self.col.get(ids=ids, include=include) if got is _LIVE else got

    def delete(self, ids: list[str]) -> Any:
        got = self._answer("delete", ids)
        return self.col.delete(ids=ids) if got is _LIVE else got

    def _write(self, method: str, ids: list[str], embeddings: Any, documents: list, metadatas: list) -> None:
        got = self._answer(method, ids, None, (embeddings[0], documents[0], metadatas[0]))
        if got is _LIVE:
            getattr(self.col, method)(ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas)

    def add(self, ids: list[str], embeddings: Any, documents: list, metadatas: list) -> None:
        self._write("add", ids, embeddings, documents, metadatas)

    def upsert(self, ids: list[str], embeddings: Any, documents: list, metadatas: list) -> None:
        self._write("upsert", ids, embeddings, documents, metadatas)

    def update(self, ids: list[str], embeddings: Any, documents: list, metadatas: list) -> None:
        self._write("update", ids, embeddings, documents, metadatas)


def _same_record(a: tuple, b: tuple) -> bool:
    return np.array_equal(np.asarray(a[0]), b[0]) and a[1] == b[1] and a[2] == b[2]


def probe(col: Collection, dimension: int | None) -> WriteProbe:
    """Write through ``add``, ``upsert`` of a new id, ``update`` of it and ``delete``, reading back after
    each; then undo. Never raises for a release's error: it is the finding (a harness fault still raises).
    The calls are made in one round trip (:class:`Batch`), and checked here one by one."""
    result = WriteProbe(dimension or FRESH_DIMENSION)
    fallback = _fallback_ids()
    if type(col) is Collection:  # a subclass may make a call its own way: then each goes through it
        col = Batch(col, result.dimension, fallback)  # type: ignore[assignment]
    try:
        result.count_before = col.count()
        ids = _free_ids(col, fallback)
    except (ChromaError, WorkerError) as exc:
        result.error = _err(exc)
        return result
    run = _Run(col, result, ids)
    added, upserted = ids
    run.step("add with a document", "add", added, 0)
    run.step("upsert of a new id with a document", "upsert", upserted, 1)
    target = upserted if upserted not in run.unknown else added if added not in run.unknown else None
    if target is None:
        result.steps.append(Step("update of it", skipped="not tried: no record of ours is known to be there"))
    else:
        run.step("update of it" if target == upserted else "update of the added record", "update", target, 2)
    run.step("delete", "delete", None, 3)
    run.undo()
    return result
