"""Compare what two releases show of the same store, record by record, in bounded memory.

Both releases are asked for the same ids, page by page (the ids come from the
source release in chunks of ``CHUNK_PAGES`` pages), so the two sides line up
whatever order each release returns records in (``get()`` order changed at
0.5.9). Each release hashes the page it read, in its own worker; the host
compares the hashes and looks at records only where they differ. Each release
is read in a thread of its own, in windows of pages streamed back page by page
(``fingerprints``), so both workers read at once and neither waits for the host
between pages; a page that differed in a window asked without records is read
again once the stream ends (``MAX_DEFERRED``). The exact neighbours of the
sample queries are computed on every page by both workers, a share each
(``SOURCE_QUERIES``), from bit-identical pages (the host computes the target's
share from the source's records where pages differ).

Nothing grows with the store: per collection the host keeps counters, a few
examples of each difference, one chunk of ids, the running exact nearest neighbours
of fifty sample query vectors (stored vectors of records drawn from the first
chunk of ids, so one call fetches them), and the filters the source worker picked
from the first page, with what the records it read say each matches (count and id
digest, summed in that worker: ``engine/worker/filter_oracle.py``).
Both releases' answers are judged against the data itself: each filter's against
the records it matches by their documents and metadata, so a store whose index
answers wrongly (both releases read it, and agree) is found and reported as
already in the store; query answers against the exact neighbours computed from
the source's vectors, and each stored vector must find its own record wherever a
healthy index always does (``query_check``).
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.engine.client import Client, Collection
from pytest_chroma_compat.engine.worker import wire
from pytest_chroma_compat.engine.worker.filter_oracle import FILTER_SHARE, MAX_FILTERS, pick  # noqa: F401 (the budget, re-exported)
from pytest_chroma_compat.engine.worker.fingerprint import RECORD_FIELDS, encode, float32_rows, nearest
from pytest_chroma_compat.roundtrip.invariants import MAX_METADATA_ULPS, MAX_ULPS, float32_ulps, values_close
from pytest_chroma_compat.snapshot.query_check import NEIGHBOURS, Queries, index_parameters, query_check, sample
from pytest_chroma_compat.snapshot.result import Check, CollectionSummary

BATCH_SIZE = 1000
CHUNK_PAGES = 64  # ids fetched from the source per call: one offset scan per 64 pages, not per page
EXAMPLES = 5
Progress = Callable[[str, int, int], None]


def _err(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split())[:300] if text else type(exc).__name__


class ReadFailed(Exception):
    """A release raised while a collection was being read; ``side`` says which one."""

    def __init__(self, side: str, version: str, exc: BaseException) -> None:
        self.side, self.version, self.cause = side, version, _err(exc)
        super().__init__(f"chromadb {version} ({side}) failed reading the collection: {self.cause}")


#: pages asked of a release in one ``fingerprints`` call; their answers stream back one page at a time
WINDOW = 8
#: page answers read ahead of the comparison, per side (bounded memory: a page of ids each, records when asked)
DEPTH = 4
#: the share of the sample queries whose exact neighbours the source's worker computes on each page; the
#: target's worker computes the rest on the same page (bit-identical where the page hashes agree; where
#: they differ the host computes them from the source's records). Why split: the slower side paces the
#: stream, and the source also evaluates the filters (``filter_oracle.Expected``). Measured per 1000-record
#: page on 1.5.9 (384-d): a read ~90-105 ms; the neighbours of 50 queries ~8-9 ms; hashing ~7 ms a side
SOURCE_QUERIES = 0.3
#: pages that differed and came without their records, compared once the stream ends; past this many,
#: records travel with every page for the rest of the collection (bounded memory, each page read once)
MAX_DEFERRED = 16


class _Stream:
    """One release's pages, read in a thread of its own: windows of ``WINDOW`` pages, each window one
    ``fingerprints`` call whose page answers stream back as the worker reads them.

    Why a thread per side: both workers then read at once. Why windows streamed: with one call per
    page, each worker waited a round trip through the host (and its GIL) between pages; streamed, it
    reads page after page, as a plain read loop does. Why in order: the collection digest a worker
    keeps depends on the order the pages arrive in. ``windows`` yields ``(pages, records)``.
    """

    def __init__(self, col: Collection, which: str, windows: Iterator, **fixed: Any) -> None:
        self.col, self.which, self.windows, self.fixed = col, which, windows, fixed
        self.answers: queue.Queue = queue.Queue(maxsize=DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{which}-pages")
        self._thread.start()

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self.answers.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for pages, records in self.windows:
                if self._stop.is_set():
                    return
                stream = self.col.client.worker.stream(
                    "fingerprints",
                    client=self.col.client.handle,
                    collection=self.col.name,
                    pages=pages,
                    records=records,
                    **self.fixed,
                )
                try:
                    for page in stream:
                        if not self._put(("ok", page, records)):
                            return
                finally:
                    stream.close()  # gives the worker back (a stopped stream's remaining answers are dropped)
            self._put(("end", None, False))
        except BaseException as exc:  # handed to the reader of the answers, which decides
            self._put(("error", exc, False))

    def answer(self) -> tuple[str, Any, bool]:
        return self.answers.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class _Windows:
    """The source's ids, chunk by chunk, cut into windows of pages for both sides.

    Runs in the source's thread (the chunk of ids is a call on the source's worker, which must not
    come while that worker streams), and hands each window to the target's side before the source
    reads it, so both read the same window at once.
    """

    def __init__(self, chunks: Iterator[list[str]], batch_size: int, records: Callable[[], bool]) -> None:
        self.chunks, self.batch_size, self.records = chunks, batch_size, records
        self.target: queue.Queue = queue.Queue()  # the same windows, for the target's side; None: no more

    def plain(self) -> Iterator[tuple[list, bool]]:
        for chunk in self.chunks:
            pages = [chunk[lo : lo + self.batch_size] for lo in range(0, len(chunk), self.batch_size)]
            for w in range(0, len(pages), WINDOW):
                yield pages[w : w + WINDOW], self.records()

    def source(self) -> Iterator[tuple[list, bool]]:
        try:
            for window in self.plain():
                self.target.put(window)
                yield window
        finally:
            self.target.put(None)

    def for_target(self) -> Iterator[tuple[list, bool]]:
        return iter(self.target.get, None)


class _OneWorker:
    """Both sides served by one worker (a release compared with itself through two clients of one
    ``Release``, as tests do): a worker streams one call at a time, so each window is read by the
    source, then by the target, in the caller's thread. Memory: one window of answers per side."""

    def __init__(self, cols: dict[str, Collection], windows: Iterator, fixed: dict[str, dict]) -> None:
        self.cols, self.windows, self.fixed = cols, windows, fixed
        self.buf: dict[str, collections.deque] = {which: collections.deque() for which in cols}

    def _fill(self) -> None:
        try:
            pages, records = next(self.windows)
        except StopIteration:
            for buf in self.buf.values():
                buf.append(("end", None, False))
            return
        except BaseException as exc:  # the source's chunk of ids
            self.buf["source"].append(("error", exc, False))
            return
        for which, col in self.cols.items():
            try:
                for page in col.client.worker.stream(
                    "fingerprints",
                    client=col.client.handle,
                    collection=col.name,
                    pages=pages,
                    records=records,
                    **self.fixed[which],
                ):
                    self.buf[which].append(("ok", page, records))
            except BaseException as exc:
                self.buf[which].append(("error", exc, False))

    def side(self, which: str) -> Any:
        owner = self

        class Side:
            def answer(self) -> tuple[str, Any, bool]:
                while not owner.buf[which]:
                    owner._fill()
                return owner.buf[which].popleft()

            def close(self) -> None:
                owner.buf[which].clear()

        return Side()


@dataclass
class _Diffs:
    """A count and the first few examples of one kind of difference (first: in page order, also for a
    page compared after the stream, see ``MAX_DEFERRED``)."""

    count: int = 0
    examples: list = field(default_factory=list)
    _at: list = field(default_factory=list)

    def add(self, example: Any, at: tuple = ()) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES or (at and at < self._at[-1]):
            i = len(self._at)
            while i and at < self._at[i - 1]:
                i -= 1
            self._at.insert(i, at)
            self.examples.insert(i, example)
            del self._at[EXAMPLES:], self.examples[EXAMPLES:]


@dataclass
class _Filter:
    where: dict | None
    where_document: dict | None
    share: float = 0.0  # of the first page's records it matches
    expected: dict | None = None  # what the data says it matches: count, digest, sample, uncertain

    def clause(self) -> dict:
        return {k: v for k, v in (("where", self.where), ("where_document", self.where_document)) if v is not None}


def pick_filters(metadatas: list, documents: list) -> list[_Filter]:
    """The filters the source worker picks from a first page (``filter_oracle.pick``: selective,
    a document filter whenever there are documents, only operators every release answers alike)."""
    return [_Filter(f["where"], f["where_document"], f["share"]) for f in pick(metadatas, documents)]


@dataclass
class _Tally:
    """Everything kept about one collection while it is read."""

    source_records: int = 0
    matched: int = 0
    dimension: int | None = None
    missing: _Diffs = field(default_factory=_Diffs)
    documents: _Diffs = field(default_factory=_Diffs)
    metadata: _Diffs = field(default_factory=_Diffs)
    embeddings: _Diffs = field(default_factory=_Diffs)
    max_ulps: int = 0
    meta_ulps: list = field(default_factory=lambda: [0])
    filters: list[_Filter] | None = None
    pages_differing: int = 0
    unrequested: int = 0


def _column(page: dict, key: str, n: int) -> list:
    values = page.get(key)
    return list(values) if values is not None else [None] * n


def _compare_records(t: _Tally, page: dict, got: dict, at: int = 0) -> None:
    """Compare one page of source records with the target's records of the same ids, one by one.

    Only pages whose hashes differ come here: a missing id, a changed value, or
    floats within tolerance (1.x re-rounds some 0.x cosine vectors and float
    metadata), which only a record-by-record look tells apart. ``at``: the page's place in the stream
    (examples are kept in that order).
    """
    ids = page["ids"]
    n = len(ids)
    s_emb, s_docs, s_meta = (
        float32_rows(page.get("embeddings"), n),
        _column(page, "documents", n),
        _column(page, "metadatas", n),
    )
    index = {rid: j for j, rid in enumerate(got["ids"])}
    m = len(got["ids"])
    g_emb, g_docs, g_meta = (
        float32_rows(got.get("embeddings"), m),
        _column(got, "documents", m),
        _column(got, "metadatas", m),
    )
    rows_s = [i for i, rid in enumerate(ids) if rid in index]
    if len(rows_s) < n:
        for i, rid in enumerate(ids):
            if rid not in index:
                t.missing.add(rid, (at, i))
    rows_t = [index[ids[i]] for i in rows_s]
    t.matched += len(rows_s)
    a_ids = [ids[i] for i in rows_s]
    a_docs, b_docs = [s_docs[i] for i in rows_s], [g_docs[j] for j in rows_t]
    a_meta, b_meta = [s_meta[i] for i in rows_s], [g_meta[j] for j in rows_t]
    if encode(a_docs) != encode(b_docs):
        for i, (rid, x, y) in enumerate(zip(a_ids, a_docs, b_docs)):
            if x != y or type(x) is not type(y):
                t.documents.add({"id": rid, "source": x, "target": y}, (at, i))
    if encode([m_ or None for m_ in a_meta]) != encode([m_ or None for m_ in b_meta]):
        for i, (rid, x, y) in enumerate(zip(a_ids, a_meta, b_meta)):
            if not values_close(x or None, y or None, t.meta_ulps):
                t.metadata.add({"id": rid, "source": x, "target": y}, (at, i))
    if s_emb is None or not rows_s:
        return
    a = s_emb[rows_s]
    b_emb = None if g_emb is None else g_emb[rows_t]
    if b_emb is None or b_emb.shape[1:] != a.shape[1:]:
        for i, rid in enumerate(a_ids[:EXAMPLES]):
            t.embeddings.add(
                {
                    "id": rid,
                    "source_shape": list(a.shape[1:]),
                    "target_shape": None if b_emb is None else list(b_emb.shape[1:]),
                },
                (at, i),
            )
        t.embeddings.count += max(0, len(a_ids) - EXAMPLES)
        return
    if not a.shape[1]:
        return
    differ = np.nonzero((a.view(np.int32) != b_emb.view(np.int32)).any(axis=1))[0]
    if not len(differ):
        return
    ulps = float32_ulps(a[differ], b_emb[differ]).max(axis=1)
    t.max_ulps = max(t.max_ulps, int(ulps.max(initial=0)))
    for r in np.nonzero(ulps > MAX_ULPS)[0]:
        k = int(differ[r])
        t.embeddings.add(
            {"id": a_ids[k], "ulps": int(ulps[r]), "source": a[k][:8].tolist(), "target": b_emb[k][:8].tolist()},
            (at, k),
        )


def _in_order(page: dict, ids: list[str]) -> dict:
    """A page read by id, its records in the order of ``ids`` (as ``fingerprint`` reads them)."""
    got = list(page["ids"])
    if got == ids:
        return page
    where = {rid: j for j, rid in enumerate(got)}
    rows = [where[rid] for rid in ids if rid in where]
    vectors = float32_rows(page.get("embeddings"), len(got))
    return {
        "ids": [got[j] for j in rows],
        "documents": None if page.get("documents") is None else [page["documents"][j] for j in rows],
        "metadatas": None if page.get("metadatas") is None else [page["metadatas"][j] for j in rows],
        "embeddings": None if vectors is None else vectors[rows],
    }


def _source_ids(src: Collection, chunk: int, total: int) -> Iterator[list[str]]:
    """The source's ids in its own order, ``chunk`` at a time (an offset scan per chunk, not per page)."""
    offset = 0
    while True:
        ids = src.get(limit=chunk, offset=offset, include=[])["ids"]
        if not ids:
            return
        yield ids
        offset += len(ids)
        if len(ids) < chunk or offset > 2 * total + chunk:  # the last chunk; or a release that ignores offset
            return


def _read_pages(
    t: _Tally,
    src: Collection,
    tgt: Collection,
    src_version: str,
    tgt_version: str,
    batch_size: int,
    chunks: Iterator[list[str]],
    queries: Queries,
    progress: Callable[[int], None] | None,
) -> tuple[str | None, str | None]:
    """Ask both releases for every source id (``chunks`` of them), page by page; returns both collection digests."""

    def side(which: str, version: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ChromaError, WorkerError) as exc:
            raise ReadFailed(which, version, exc) from None

    def fail(which: str, exc: BaseException) -> Any:
        def again() -> Any:
            raise exc

        return side(which, versions[which], again)

    mine = int(len(queries.ids) * SOURCE_QUERIES)  # the source's queries; the target's are the rest
    theirs = queries.vectors[mine:]
    by_side = {"source": queries.vectors[:mine], "target": theirs}
    asked = {
        w: {"queries": wire.pack_ndarray(v), "space": queries.space, "k": NEIGHBOURS} if len(v) else {}
        for w, v in by_side.items()
    }
    tokens = {"source": uuid.uuid4().hex, "target": uuid.uuid4().hex}
    versions = {"source": src_version, "target": tgt_version}
    # Records travel with the hashes after a page that differed (the source worker picks the
    # filters from its first page itself): most upgrades change nothing, and then records are waste, but
    # when one page differs (0.x cosine vectors re-rounded by 1.x differ on every page) asking
    # again for its records would read it twice. A window already asked without them is compared
    # after the stream (``deferred``: a worker answers nothing else while it streams).
    flags = {"wanted": False, "always": False}
    windows = _Windows(chunks, batch_size, lambda: flags["wanted"] or flags["always"])
    deferred: list[tuple[int, list[str], list]] = []
    fixed = {
        "source": {"digest": tokens["source"], "filters": True, **asked["source"]},
        "target": {"digest": tokens["target"], **asked["target"]},
    }
    if src.client.worker is tgt.client.worker:  # one worker for both sides: one side's call at a time
        one = _OneWorker({"source": src, "target": tgt}, windows.plain(), fixed)
        streams: dict[str, Any] = {which: one.side(which) for which in fixed}
    else:
        streams = {
            "source": _Stream(src, "source", windows.source(), **fixed["source"]),
            "target": _Stream(tgt, "target", windows.for_target(), **fixed["target"]),
        }

    def near(page: dict | None, answer: dict, rows: int) -> list:
        """One side's nearest records per query of its share (none asked: none)."""
        if page is None:  # the source's records: the target's share of the queries, computed here
            if not len(theirs):
                return []
            vectors = float32_rows(answer.get("embeddings"), len(answer["ids"]))
            return nearest(list(answer["ids"]), vectors, theirs, queries.space, NEIGHBOURS)
        return page.get("nearest") or ([] if not rows else [[[], []] for _ in range(rows)])

    def settle(at: int, s: dict, g: dict, records: bool) -> None:
        t.source_records += len(s["ids"])
        t.unrequested += g["unrequested"]
        t.dimension = s["dimension"] if s["dimension"] is not None else t.dimension
        if "filters" in s:
            t.filters = [_Filter(f["where"], f["where_document"], f["share"]) for f in s["filters"]]
        if s["hash"] == g["hash"]:
            t.matched += len(s["ids"])
            flags["wanted"] = False
            if queries.ids:
                queries.merge(near(s, s, mine) + near(g, g, len(theirs)), at, s["ids"])
        else:
            t.pages_differing += 1
            flags["wanted"] = True
            if records:
                _compare_records(t, s["records"], g["records"], at)
                if queries.ids:
                    queries.merge(near(s, s, mine) + near(None, s["records"], 0), at, s["ids"])
            else:
                deferred.append((at, s["ids"], near(s, s, mine)))
                flags["always"] = len(deferred) >= MAX_DEFERRED
        if progress:
            progress(t.source_records)

    try:
        at = 0
        while True:
            kind, s, records = streams["source"].answer()
            if kind == "error":
                fail("source", s)
            if kind == "end":
                break
            kind, g, _ = streams["target"].answer()
            if kind == "error":
                fail("target", g)
            if kind == "end":
                raise ReadFailed("target", tgt_version, RuntimeError("the target's answers ended early"))
            settle(at, s, g, records)
            at += 1
        kind, g, _ = streams["target"].answer()
        if kind == "error":
            fail("target", g)
    finally:
        for stream in streams.values():
            stream.close()
    if deferred:  # both workers are free again: read these pages' records once more, both at once
        with ThreadPoolExecutor(1, thread_name_prefix="target-records") as pool:
            for at, ids, mine_near in deferred:
                got = pool.submit(
                    side, "target", tgt_version, functools.partial(tgt.get, ids=ids, include=RECORD_FIELDS)
                )
                page = _in_order(
                    side("source", src_version, functools.partial(src.get, ids=ids, include=RECORD_FIELDS)), ids
                )
                _compare_records(t, page, got.result(), at)
                if queries.ids:
                    queries.merge(mine_near + near(None, page, 0), at, ids)

    def take(col: Any, which: str, op: str = "take_digest") -> Any:
        return side(which, versions[which], lambda: col.client.worker.call(op, token=tokens[which]))

    for f, expected in zip(t.filters or [], take(src, "source", "take_expected") or []):
        f.expected = expected
    return take(src, "source"), take(tgt, "target")


def _check(
    name: str, collection: str, diffs: _Diffs, ok_detail: str, what: str, started: float, **evidence: Any
) -> Check:
    if not diffs.count:
        return Check(name, "pass", ok_detail, collection, evidence, time.monotonic() - started)
    return Check(
        name,
        "fail",
        f"{diffs.count} record(s) {what}; first: {json.dumps(diffs.examples[0], default=repr)[:300]}",
        collection,
        {"records affected": diffs.count, "examples": diffs.examples, **evidence},
        time.monotonic() - started,
    )


def compare_collection(
    name: str,
    source: Client,
    target: Client,
    *,
    space: str = "l2",
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    label: str | None = None,
    progress: Progress | None = None,
    config: Any = None,
) -> tuple[CollectionSummary, list[Check]]:
    """Every record of one collection on both sides, then queries and filters (the write: ``write_check``).

    ``label`` names the collection in the checks (``tenant/database:name`` outside the default database).
    ``config``: the collection's configuration JSON as the store holds it (1.x keeps the index parameters
    there), so the query check knows how strong the index was built (``query_check.index_parameters``).
    """
    started = time.monotonic()
    shown = label or name
    summary = CollectionSummary(shown, space=space)
    src = source.get_collection(name)
    try:
        tgt = target.get_collection(name)
    except (ChromaError, WorkerError) as exc:
        return summary, [
            Check("count", "fail", f"chromadb {target.release.version} cannot open the collection: {_err(exc)}", shown)
        ]
    with ThreadPoolExecutor(1, thread_name_prefix="target-count") as pool:  # two workers: ask both at once
        target_count = pool.submit(tgt.count)
        try:
            summary.source_count = src.count()
            chunks = _source_ids(src, batch_size * CHUNK_PAGES, summary.source_count)
            first = next(chunks, [])
            queries = sample(src, first, space, seed)
            chunks = itertools.chain([first], chunks)
            del first  # the stream lets go of it once it moves past it: one chunk of ids held at a time
        except (ChromaError, WorkerError) as exc:
            raise ReadFailed("source", source.release.version, exc) from None
        try:
            summary.target_count = target_count.result()
        except (ChromaError, WorkerError) as exc:
            raise ReadFailed("target", target.release.version, exc) from None
    t = _Tally()
    streamed = time.monotonic()
    summary.source_digest, summary.target_digest = _read_pages(
        t,
        src,
        tgt,
        source.release.version,
        target.release.version,
        batch_size,
        chunks,
        queries,
        (lambda done: progress(shown, done, summary.source_count or 0)) if progress else None,
    )
    summary.stream_seconds = time.monotonic() - streamed
    summary.records_compared = t.matched
    summary.dimension = t.dimension
    summary.max_embedding_ulps, summary.max_metadata_ulps = t.max_ulps, t.meta_ulps[0]
    extra = (summary.target_count or 0) - t.matched
    counts = {
        "source count()": summary.source_count,
        "source records read": t.source_records,
        "target count()": summary.target_count,
        "found in target": t.matched,
        "pages compared record by record (their hashes differed)": t.pages_differing,
    }
    if t.unrequested:
        counts["records the target returned that were not asked for"] = t.unrequested
    checks = [
        Check(
            "count",
            "pass" if summary.source_count == summary.target_count == t.source_records == t.matched else "fail",
            f"{summary.target_count} record(s) on both sides"
            if summary.source_count == summary.target_count == t.matched
            else f"source has {summary.source_count}, target has "
            f"{summary.target_count}, {t.matched} of the source's found in the target",
            shown,
            counts,
        ),
        _check(
            "ids",
            shown,
            t.missing,
            f"all {t.matched} id(s) present",
            "missing in the target",
            started,
            **({"unexpected in target": extra} if extra > 0 else {}),
        ),
        _check("documents", shown, t.documents, "identical", "with a different document", started),
        _check(
            "metadata",
            shown,
            t.metadata,
            "identical, types included"
            + (
                f" (floats re-rounded by up to {t.meta_ulps[0]} ULP, tolerance {MAX_METADATA_ULPS})"
                if t.meta_ulps[0]
                else ""
            ),
            "with different metadata",
            started,
        ),
        _check(
            "embeddings",
            shown,
            t.embeddings,
            f"within {t.max_ulps} float32 ULP (tolerance {MAX_ULPS})",
            f"with embeddings beyond {MAX_ULPS} ULP",
            started,
            max_ulps=t.max_ulps,
        ),
    ]
    if extra > 0 and checks[1].status == "pass":
        checks[1] = Check("ids", "fail", f"the target has {extra} record(s) the source does not", shown, counts)
    checks.append(
        query_check(
            shown, src, tgt, queries, params=index_parameters(src.metadata, config), count=summary.source_count or 0
        )
    )
    checks.append(_filter_check(shown, src, tgt, t.filters or []))
    return summary, checks


# -- filters -----------------------------------------------------------------------------------------


def _digest(col: Collection, f: _Filter) -> dict | str:
    try:
        return col._call("id_digest", where=f.where, where_document=f.where_document)
    except (ChromaError, WorkerError) as exc:
        return f"error: {_err(exc)}"


def _said(answer: dict | str) -> str:
    """An answer in a few words: the error, or the count and the first ids."""
    if isinstance(answer, str):
        return answer
    first = ", ".join(answer["sample"][:3]) + (", ..." if answer["count"] > 3 else "")
    return f"{answer['count']} id(s)" + (f" ({first})" if answer["count"] else "")


def _right(answer: dict | str, expected: dict) -> bool:
    return not isinstance(answer, str) and (answer["count"], answer["digest"]) == (
        expected["count"],
        expected["digest"],
    )


def _judge(f: _Filter, s: dict | str, t: dict | str, src_version: str, tgt_version: str) -> tuple[str, str, dict]:
    """One filter's status, detail and evidence: each release's answer against the records it must match.

    Why against the data: both releases read the same store, indexes included, so
    a store whose full-text index answers wrongly makes them agree, and wrongly.
    Where the data holds values whose matching changed between releases
    (``uncertain``, see ``filter_oracle``), the releases are only compared with each other.
    """
    e = f.expected
    evidence = {**f.clause(), "source": s, "target": t}
    what = "full-text index" if f.where_document else "metadata index"
    asked = json.dumps(f.clause(), ensure_ascii=False)
    if e is None or e["uncertain"]:
        if e is not None:
            evidence["not judged against the data"] = (
                f"{e['uncertain']} record(s) hold values releases match differently"
            )
        if s == t:
            return "pass", "", evidence
        return "fail", f"{asked}: chromadb {src_version} answers {_said(s)}, {tgt_version} {_said(t)}", evidence
    evidence["expected from the data"] = {k: e[k] for k in ("count", "digest", "sample")}
    source_ok, target_ok = _right(s, e), _right(t, e)
    data = f"the data has {_said(e).replace('id(s)', 'matching record(s)')}"
    if source_ok and target_ok:
        return "pass", "", evidence
    if source_ok:
        return (
            "fail",
            (f"{asked}: chromadb {tgt_version} answers {_said(t)}, {data} (and {src_version} answers so)"),
            evidence,
        )
    if target_ok:
        return (
            "pre-existing",
            (f"{asked}: chromadb {src_version} (source) answers {_said(s)}, {data}; {tgt_version} answers right"),
            evidence,
        )
    same = f"the same {_said(s)}" if s == t else f"{_said(s)} and {_said(t)}"
    return (
        "pre-existing",
        (
            f"the store's {what} answers wrongly: both releases ({src_version}, {tgt_version}) "
            f"answer {asked} with {same}, {data}"
        ),
        evidence,
    )


def _filter_check(name: str, src: Collection, tgt: Collection, filters: list[_Filter]) -> Check:
    started = time.monotonic()
    if not filters:
        return Check("filters", "skip", "no metadata keys or documents to filter on", name)
    versions = src.client.release.version, tgt.client.release.version
    with ThreadPoolExecutor(2, thread_name_prefix="filters") as pool:  # two workers: ask both at once
        answers = [(pool.submit(_digest, src, f), pool.submit(_digest, tgt, f)) for f in filters]
        judged = [_judge(f, s.result(), t.result(), *versions) for f, (s, t) in zip(filters, answers)]
    seconds = time.monotonic() - started
    on_data = sum(1 for f in filters if f.expected is not None and not f.expected["uncertain"])
    texts = sum(1 for f in filters if f.where_document)
    bad = [(status, detail, ev) for status, detail, ev in judged if status != "pass"]
    if not bad:
        return Check(
            "filters",
            "pass",
            f"{len(filters)} filter(s) ({texts} full-text) give the same ids, {on_data} of them the ids the data says",
            name,
            {"filters": [ev for _, _, ev in judged]},
            seconds,
        )
    status = "fail" if any(b[0] == "fail" for b in bad) else "pre-existing"
    first = next(b for b in bad if b[0] == status)
    return Check(
        "filters",
        status,
        f"{len(bad)} of {len(filters)} filter(s) answer wrongly; first: {first[1]}",
        name,
        {"mismatches": [b[2] for b in bad], "filters": [f.clause() for f in filters]},
        seconds,
    )
