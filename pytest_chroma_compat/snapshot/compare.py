"""Compare what two releases show of the same store, record by record, in bounded memory.

Both releases are asked for the same ids, page by page (the ids come from the
source release in chunks of ``CHUNK_PAGES`` pages), so the two sides line up
whatever order each release returns records in (``get()`` order changed at
0.5.9). Each release hashes the page it read, in its own worker; the host
compares the hashes and looks at records only where they differ. Each release
is read in a thread of its own, a page or two ahead, so both workers read at once.

Nothing grows with the store: per collection the host keeps counters, a few
examples of each difference, one chunk of ids, the running exact nearest neighbours
of fifty sample query vectors (stored vectors of records drawn from the first
chunk of ids, so one call fetches them), and the filters the source worker picked
from the first page, with what the records it read say each matches (count and id
digest, summed in that worker: ``worker/filter_oracle.py``).
Both releases' answers are judged against the data itself: each filter's against
the records it matches by their documents and metadata, so a store whose index
answers wrongly (both releases read it, and agree) is found and reported as
already in the store; query answers against the exact neighbours computed from
the source's vectors, and each stored vector must find its own record wherever a
healthy index always does (``query_check``).
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..client import Client, Collection
from ..errors import ChromaError, WorkerError
from ..invariants import MAX_METADATA_ULPS, MAX_ULPS, float32_ulps, values_close
from ..worker import wire
from ..worker.filter_oracle import FILTER_SHARE, MAX_FILTERS, pick  # noqa: F401 (the budget, re-exported)
from ..worker.fingerprint import RECORD_FIELDS, encode, float32_rows
from .query_check import NEIGHBOURS, Queries, index_parameters, query_check, sample
from .result import Check, CollectionSummary

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


class _Reader:
    """One release's page reads, in order, in a thread of their own.

    Why a thread per side: both workers then read at once, each as soon as a
    page's ids are known, rather than the target waiting for the source's answer.
    Why in order: a worker answers one call at a time, and the collection digest
    it keeps depends on the order the pages arrive in.
    """

    def __init__(self, col: Collection, which: str, depth: int = 2, **fixed: Any) -> None:
        self.col, self.which, self.fixed = col, which, fixed
        self._asked: queue.Queue = queue.Queue(maxsize=depth)
        self._answers: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{which}-pages")
        self._thread.start()

    def _run(self) -> None:
        failed: BaseException | None = None
        while True:
            item = self._asked.get()
            if item is None:
                return
            if failed is None:  # after a failure, keep taking requests so the asker never blocks
                try:
                    self._answers.put(("ok", self.col._call("fingerprint", ids=item[0], records=item[1],
                                                            **self.fixed)))
                    continue
                except BaseException as exc:  # handed to the reader of the answers, which decides
                    failed = exc
            self._answers.put(("error", failed))

    def ask(self, ids: list[str], records: bool) -> None:
        self._asked.put((ids, records))

    def answer(self) -> dict:
        kind, value = self._answers.get()
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        while True:  # drop what was asked and not started, then stop
            try:
                self._asked.get_nowait()
            except queue.Empty:
                break
        self._asked.put(None)
        self._thread.join(timeout=30)


@dataclass
class _Diffs:
    """A count and the first few examples of one kind of difference."""

    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, example: Any) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


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


def _compare_records(t: _Tally, page: dict, got: dict) -> None:
    """Compare one page of source records with the target's records of the same ids, one by one.

    Only pages whose hashes differ come here: a missing id, a changed value, or
    floats within tolerance (1.x re-rounds some 0.x cosine vectors and float
    metadata), which only a record-by-record look tells apart.
    """
    ids = page["ids"]
    n = len(ids)
    s_emb, s_docs, s_meta = float32_rows(page.get("embeddings"), n), _column(page, "documents", n), \
        _column(page, "metadatas", n)
    index = {rid: j for j, rid in enumerate(got["ids"])}
    m = len(got["ids"])
    g_emb, g_docs, g_meta = float32_rows(got.get("embeddings"), m), _column(got, "documents", m), \
        _column(got, "metadatas", m)
    rows_s = [i for i, rid in enumerate(ids) if rid in index]
    if len(rows_s) < n:
        for rid in ids:
            if rid not in index:
                t.missing.add(rid)
    rows_t = [index[ids[i]] for i in rows_s]
    t.matched += len(rows_s)
    a_ids = [ids[i] for i in rows_s]
    a_docs, b_docs = [s_docs[i] for i in rows_s], [g_docs[j] for j in rows_t]
    a_meta, b_meta = [s_meta[i] for i in rows_s], [g_meta[j] for j in rows_t]
    if encode(a_docs) != encode(b_docs):
        for rid, x, y in zip(a_ids, a_docs, b_docs):
            if x != y or type(x) is not type(y):
                t.documents.add({"id": rid, "source": x, "target": y})
    if encode([m_ or None for m_ in a_meta]) != encode([m_ or None for m_ in b_meta]):
        for rid, x, y in zip(a_ids, a_meta, b_meta):
            if not values_close(x or None, y or None, t.meta_ulps):
                t.metadata.add({"id": rid, "source": x, "target": y})
    if s_emb is None or not rows_s:
        return
    a = s_emb[rows_s]
    b_emb = None if g_emb is None else g_emb[rows_t]
    if b_emb is None or b_emb.shape[1:] != a.shape[1:]:
        for rid in a_ids[:EXAMPLES]:
            t.embeddings.add({"id": rid, "source_shape": list(a.shape[1:]),
                              "target_shape": None if b_emb is None else list(b_emb.shape[1:])})
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
        t.embeddings.add({"id": a_ids[k], "ulps": int(ulps[r]), "source": a[k][:8].tolist(),
                          "target": b_emb[k][:8].tolist()})


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


def _read_pages(t: _Tally, src: Collection, tgt: Collection, src_version: str, tgt_version: str,
                batch_size: int, chunks: Iterator[list[str]], queries: Queries,
                progress: Callable[[int], None] | None) -> tuple[str | None, str | None]:
    """Ask both releases for every source id (``chunks`` of them), page by page; returns both collection digests."""
    def side(which: str, version: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ChromaError, WorkerError) as exc:
            raise ReadFailed(which, version, exc) from None

    packed = wire.pack_ndarray(queries.vectors) if queries.ids else None
    tokens = {"source": uuid.uuid4().hex, "target": uuid.uuid4().hex}
    readers = {"source": _Reader(src, "source", digest=tokens["source"], queries=packed, space=queries.space,
                                 k=NEIGHBOURS, filters=True),
               "target": _Reader(tgt, "target", digest=tokens["target"])}
    versions = {"source": src_version, "target": tgt_version}
    # Records travel with the hashes after a page that differed (the source worker picks the
    # filters from its first page itself): most upgrades change nothing, and then records are waste, but
    # when one page differs (0.x cosine vectors re-rounded by 1.x differ on every page) asking
    # again for its records would read it twice.
    wanted = False
    pending: list[tuple[bool, bool]] = []  # pages asked and not yet settled: with records (source, target)

    def settle() -> None:
        nonlocal wanted
        s_records, g_records = pending.pop(0)
        s, g = (side(w, versions[w], readers[w].answer) for w in ("source", "target"))
        t.source_records += len(s["ids"])
        t.unrequested += g["unrequested"]
        t.dimension = s["dimension"] if s["dimension"] is not None else t.dimension
        if s.get("nearest"):
            queries.merge(s["nearest"])
        if "filters" in s:
            t.filters = [_Filter(f["where"], f["where_document"], f["share"]) for f in s["filters"]]
        if s["hash"] == g["hash"]:
            t.matched += len(s["ids"])
            wanted = False
        else:
            t.pages_differing += 1
            wanted = True
            if not s_records:
                s["records"] = side("source", src_version, lambda: src.get(ids=s["ids"], include=RECORD_FIELDS))
            if not g_records:
                g["records"] = side("target", tgt_version, lambda: tgt.get(ids=s["ids"], include=RECORD_FIELDS))
            _compare_records(t, s["records"], g["records"])
        if progress:
            progress(t.source_records)

    try:
        while (chunk := side("source", src_version, lambda: next(chunks, None))) is not None:
            for lo in range(0, len(chunk), batch_size):
                ids = chunk[lo:lo + batch_size]
                asked = (wanted, wanted)
                readers["source"].ask(ids, asked[0])
                readers["target"].ask(ids, asked[1])
                pending.append(asked)
                if len(pending) > 1:
                    settle()
        while pending:
            settle()
    finally:
        for reader in readers.values():
            reader.close()
    take = lambda col, which, op="take_digest": side(which, versions[which], lambda: col.client.worker.call(  # noqa
        op, token=tokens[which]))
    for f, expected in zip(t.filters or [], take(src, "source", "take_expected") or []):
        f.expected = expected
    return take(src, "source"), take(tgt, "target")


def _check(name: str, collection: str, diffs: _Diffs, ok_detail: str, what: str, started: float,
           **evidence: Any) -> Check:
    if not diffs.count:
        return Check(name, "pass", ok_detail, collection, evidence, time.monotonic() - started)
    return Check(name, "fail", f"{diffs.count} record(s) {what}; first: {json.dumps(diffs.examples[0], default=repr)[:300]}",
                 collection, {"records affected": diffs.count, "examples": diffs.examples, **evidence},
                 time.monotonic() - started)


def compare_collection(name: str, source: Client, target: Client, *, space: str = "l2",
                       batch_size: int = BATCH_SIZE, seed: int = 0, label: str | None = None,
                       progress: Progress | None = None, config: Any = None) -> tuple[CollectionSummary, list[Check]]:
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
        return summary, [Check("count", "fail", f"chromadb {target.release.version} cannot open the collection: "
                                                f"{_err(exc)}", shown)]
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
        t, src, tgt, source.release.version, target.release.version, batch_size, chunks, queries,
        (lambda done: progress(shown, done, summary.source_count or 0)) if progress else None)
    summary.stream_seconds = time.monotonic() - streamed
    summary.records_compared = t.matched
    summary.dimension = t.dimension
    summary.max_embedding_ulps, summary.max_metadata_ulps = t.max_ulps, t.meta_ulps[0]
    extra = (summary.target_count or 0) - t.matched
    counts = {"source count()": summary.source_count, "source records read": t.source_records,
              "target count()": summary.target_count, "found in target": t.matched,
              "pages compared record by record (their hashes differed)": t.pages_differing}
    if t.unrequested:
        counts["records the target returned that were not asked for"] = t.unrequested
    checks = [
        Check("count", "pass" if summary.source_count == summary.target_count == t.source_records == t.matched
              else "fail", f"{summary.target_count} record(s) on both sides" if summary.source_count ==
              summary.target_count == t.matched else f"source has {summary.source_count}, target has "
              f"{summary.target_count}, {t.matched} of the source's found in the target", shown, counts),
        _check("ids", shown, t.missing, f"all {t.matched} id(s) present", "missing in the target", started,
               **({"unexpected in target": extra} if extra > 0 else {})),
        _check("documents", shown, t.documents, "identical", "with a different document", started),
        _check("metadata", shown, t.metadata, "identical, types included" + (
            f" (floats re-rounded by up to {t.meta_ulps[0]} ULP, tolerance {MAX_METADATA_ULPS})"
            if t.meta_ulps[0] else ""), "with different metadata", started),
        _check("embeddings", shown, t.embeddings, f"within {t.max_ulps} float32 ULP (tolerance {MAX_ULPS})",
               f"with embeddings beyond {MAX_ULPS} ULP", started, max_ulps=t.max_ulps),
    ]
    if extra > 0 and checks[1].status == "pass":
        checks[1] = Check("ids", "fail", f"the target has {extra} record(s) the source does not", shown, counts)
    checks.append(query_check(shown, src, tgt, queries, params=index_parameters(src.metadata, config),
                              count=summary.source_count or 0))
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
    return not isinstance(answer, str) and (answer["count"], answer["digest"]) == (expected["count"],
                                                                                   expected["digest"])


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
            evidence["not judged against the data"] = (f"{e['uncertain']} record(s) hold values releases match "
                                                       f"differently")
        if s == t:
            return "pass", "", evidence
        return "fail", f"{asked}: chromadb {src_version} answers {_said(s)}, {tgt_version} {_said(t)}", evidence
    evidence["expected from the data"] = {k: e[k] for k in ("count", "digest", "sample")}
    source_ok, target_ok = _right(s, e), _right(t, e)
    data = f"the data has {_said(e).replace('id(s)', 'matching record(s)')}"
    if source_ok and target_ok:
        return "pass", "", evidence
    if source_ok:
        return "fail", (f"{asked}: chromadb {tgt_version} answers {_said(t)}, {data} (and {src_version} answers "
                        f"so)"), evidence
    if target_ok:
        return "pre-existing", (f"{asked}: chromadb {src_version} (source) answers {_said(s)}, {data}; "
                                f"{tgt_version} answers right"), evidence
    same = f"the same {_said(s)}" if s == t else f"{_said(s)} and {_said(t)}"
    return "pre-existing", (f"the store's {what} answers wrongly: both releases ({src_version}, {tgt_version}) "
                            f"answer {asked} with {same}, {data}"), evidence


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
        return Check("filters", "pass", f"{len(filters)} filter(s) ({texts} full-text) give the same ids, "
                                        f"{on_data} of them the ids the data says", name,
                     {"filters": [ev for _, _, ev in judged]}, seconds)
    status = "fail" if any(b[0] == "fail" for b in bad) else "pre-existing"
    first = next(b for b in bad if b[0] == status)
    return Check("filters", status, f"{len(bad)} of {len(filters)} filter(s) answer wrongly; first: {first[1]}", name,
                 {"mismatches": [b[2] for b in bad], "filters": [f.clause() for f in filters]}, seconds)
