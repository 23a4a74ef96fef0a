"""Which filters to ask a release, and which records they match by the data alone.

Imported by the worker (a sibling file, run by a release's own interpreter:
standard library only) and by the host (``pytest_chroma_compat.worker.filter_oracle``),
so the filters the host shows and the ones a worker evaluates are the same code.

Why the data is the judge: comparing two releases' answers misses a defect both
share, and a store carries its own indexes (a corrupted full-text index is in
the store; both releases read it and both answer wrongly). The source worker
reads every record anyway (the ``fingerprint`` op); evaluating each filter on the
page it has just read costs microseconds per record and yields, per filter, the
count and order-independent digest of the records that match, the same summary
the ``id_digest`` op makes of a release's answer, with no id list kept anywhere.

Why these operators and values only: each is answered the same way by every
release measured (0.3.29, 0.4.24, 0.6.3, 1.0.21, 1.5.9), so a difference from the data is a
defect, never a change of meaning.

- ``where_document`` ``$contains``: a case-sensitive substring match everywhere, inside
  words and across spaces included. But 0.4.24 and 0.6.3 hand the text to SQL ``LIKE``
  unescaped (``%`` matches every document, ``_`` any character), 0.3.29 splices it into
  SQL unquoted (a ``'`` is a syntax error), and 0.4.24/0.6.3 miss the two-character
  ``"日本"``: so texts are 6-12 characters of ``SAFE_TEXT``.
- ``$eq`` on a string, int or bool: the same everywhere, except an int against a float
  of equal value (0.4.24 does not match ``1.0`` for ``1``, 0.6.3 and 1.x do) and, on
  0.3.29, a string against a number (``"1"`` matches ``1``). Records holding such a
  value are counted as ``uncertain``: the filter is then judged between releases only.
- ``$eq`` on a float is never asked: 1.0.21 and 1.5.9 match int values by truncation
  (``$eq 1.5`` matches ``1``, ``$eq 0.3`` matches ``0``).
- ``$gt`` on a number: the same for int and float values everywhere (bools never match).
  Its edge lies halfway between two stored values, and values within re-rounding
  distance of it (1.x re-rounds some float metadata) are ``uncertain``.
"""

from __future__ import annotations

import hashlib
import heapq
import string
from collections import Counter
from typing import Any, Optional

MAX_FILTERS = 8
FILTER_SHARE = 0.25  # the filters together may match this share of the records (estimated on the first page)
SAMPLE = 10  # smallest matching ids kept as evidence, as ``id_digest`` keeps them
SAFE_TEXT = frozenset(string.ascii_letters + string.digits + " .,:;-/#()+=@!?")
SLICE_LENGTHS = (12, 9, 6)
SLICE_DOCUMENTS = 16  # documents of the first page whose slices are tried
SLICE_STARTS = 8  # word starts tried per document
MAX_CANDIDATES = 64  # texts counted at most
SCAN_CHARS = 1_000_000  # the first page's documents scanned to estimate a candidate's share
EDGE_RTOL = 1e-6


def id_sum(ids: Any) -> int:
    """Order-independent digest of ids: the sum of their 64-bit blake2b values, as ``id_digest`` computes it."""
    digest = 0
    for rid in ids:
        digest = (digest + int.from_bytes(hashlib.blake2b(rid.encode(), digest_size=8).digest(), "big")) % (1 << 64)
    return digest


def _rarest(values: list) -> tuple[Any, int]:
    """The least frequent value (the first seen, among equals); True, 1 and 1.0 are told apart."""
    counts = Counter((type(v), v) for v in values)
    (_, value), n = min(counts.items(), key=lambda kv: kv[1])
    return value, n


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _edge(vals: list) -> Any:
    """A ``$gt`` edge near the top of the values, halfway between two of them (ints: the lower one, exact)."""
    ordered = sorted(vals)
    below = [v for v in ordered if v < ordered[-1]]  # something must be greater
    if not below:
        return None
    low = below[min(int(len(ordered) * 0.95), len(below) - 1)]
    high = min(v for v in ordered if v > low)
    if isinstance(low, int) and isinstance(high, int):
        return low
    return low + (high - low) / 2


def _slices(doc: str) -> list[str]:
    """Candidate texts of one document: windows starting at its word starts, safe characters only."""
    starts = [i for i in range(len(doc)) if doc[i] != " " and (i == 0 or doc[i - 1] == " ")][:SLICE_STARTS]
    out = []
    for length in SLICE_LENGTHS:
        for i in starts:
            text = doc[i:i + length].strip()
            if len(text) >= min(SLICE_LENGTHS) and all(c in SAFE_TEXT for c in text):
                out.append(text)
    return list(dict.fromkeys(out))


def _document_filter(docs: list[str], n: int) -> Optional[dict]:
    """The most selective text among the rarest word and slices of single documents.

    Why slices: when every word occurs in every document (templated text,
    permutations of one vocabulary) no word is selective, yet full-text search
    must still be exercised; a 6-12 character slice of one document, word
    boundaries included, usually occurs in that document alone.
    """
    scanned, size = [], 0
    for d in docs:
        if size > SCAN_CHARS:
            break
        scanned.append(d)
        size += len(d)
    joined = "\x00".join(scanned)  # one C-level count per candidate; texts never hold \x00
    words = [w for d in scanned for w in dict.fromkeys(d.split())
             if len(w) >= 4 and w.isascii() and all(c in SAFE_TEXT for c in w)]
    candidates = [(_rarest(words)[0], 1)] if words else []  # (text, its occurrences in its own document)
    step = max(1, len(docs) // SLICE_DOCUMENTS)
    for d in docs[::step][:SLICE_DOCUMENTS]:
        candidates.extend((text, d.count(text)) for text in _slices(d))
    best, best_count = None, 0
    for text, own in candidates[:MAX_CANDIDATES]:
        count = joined.count(text)
        if count and (best is None or count < best_count):
            best, best_count = text, count
            if count <= own:  # found in one document only
                break
    if best is None:
        return None
    share = sum(best in d for d in scanned) / max(len(scanned), 1) * len(docs) / n
    return {"where": None, "where_document": {"$contains": best}, "share": share}


def pick(metadatas: list, documents: list) -> list[dict]:
    """Filters on the metadata keys and documents of the first page, chosen to be selective.

    Why selective: a filter costs its release time for every record it matches
    (measured on 1.5.9: about 11 us per matched id, so a filter matching half of
    a store costs a tenth of reading it). So each key gets ``$eq`` on its rarest
    value and numeric keys ``$gt`` near the top of their range; documents a rare
    word or a slice of one document. The most selective are kept while all
    together match at most ``FILTER_SHARE`` of the first page, the most selective
    document filter always (full-text search is exercised whenever documents exist).
    Each is ``{"where", "where_document", "share"}``.
    """
    n = max(len(metadatas), len(documents), 1)
    values: dict[str, list] = {}
    for meta in metadatas:
        for key, value in (meta or {}).items():
            if isinstance(value, (str, int, float, bool)) and not key.startswith("chroma:"):
                values.setdefault(key, []).append(value)
    candidates: list[dict] = []
    for key in sorted(values)[:MAX_FILTERS // 2]:
        vals = values[key]
        exact = [v for v in vals if not isinstance(v, float)]
        if exact:
            value, count = _rarest(exact)
            candidates.append({"where": {key: {"$eq": value}}, "where_document": None, "share": count / n})
        numbers = [v for v in vals if _number(v)]
        edge = _edge(numbers) if numbers else None
        if edge is not None:
            candidates.append({"where": {key: {"$gt": edge}}, "where_document": None,
                               "share": sum(v > edge for v in numbers) / n})
    document = _document_filter([d for d in documents if isinstance(d, str)], n)
    chosen, share = ([document], document["share"]) if document else ([], 0.0)
    for f in sorted(candidates, key=lambda f: f["share"]):
        if chosen and (share + f["share"] > FILTER_SHARE or len(chosen) == MAX_FILTERS):
            break
        chosen.append(f)
        share += f["share"]
    return chosen


def matches(clause: dict, document: Any, metadata: Any) -> Optional[bool]:
    """Whether one record matches a filter ``pick`` made, by the data; None where releases differ."""
    contains = (clause.get("where_document") or {}).get("$contains")
    if contains is not None:
        return isinstance(document, str) and contains in document
    ((key, cond),) = clause["where"].items()
    ((op, want),) = cond.items()
    meta = metadata or {}
    if key not in meta:
        return False
    have = meta[key]
    if isinstance(have, list):
        return None  # 1.5's list values: how scalar operators treat them is not pinned down
    if op == "$gt":
        if not _number(have):
            return False
        near = abs(have - want) <= EDGE_RTOL * max(1.0, abs(want))
        if near and (isinstance(have, float) or isinstance(want, float)):  # ints compare exactly
            return None
        return have > want
    if isinstance(want, bool) or isinstance(have, bool):
        return type(have) is type(want) and have == want
    if isinstance(want, str):
        if isinstance(have, str):
            return have == want
        try:
            return None if float(want) == have else False  # 0.3.29 casts: "1" matches 1
        except ValueError:
            return False
    if isinstance(have, float):
        return None if have == want else False  # 0.4.x: 1 does not match 1.0; later releases: it does
    if isinstance(have, str):
        try:
            return None if float(have) == want else False
        except ValueError:
            return False
    return have == want


class Expected:
    """Per filter, what the records read so far say it matches: count, id digest, smallest ids, uncertain."""

    def __init__(self, filters: list[dict]) -> None:
        self.filters = filters
        self._count = [0] * len(filters)
        self._sum = [0] * len(filters)
        self._smallest: list[list] = [[] for _ in filters]  # max-heaps of the SAMPLE smallest, negated
        self._uncertain = [0] * len(filters)

    def update(self, ids: list, documents: Any, metadatas: Any) -> None:
        docs = documents if documents is not None else [None] * len(ids)
        metas = metadatas if metadatas is not None else [None] * len(ids)
        for j, f in enumerate(self.filters):
            matched = []
            for rid, doc, meta in zip(ids, docs, metas):
                hit = matches(f, doc, meta)
                if hit is None:
                    self._uncertain[j] += 1
                elif hit:
                    matched.append(rid)
            self._count[j] += len(matched)
            self._sum[j] = (self._sum[j] + id_sum(matched)) % (1 << 64)
            heap = self._smallest[j]
            for rid in heapq.nsmallest(SAMPLE, matched):
                if len(heap) < SAMPLE:
                    heapq.heappush(heap, _Desc(rid))
                elif rid < heap[0].rid:
                    heapq.heapreplace(heap, _Desc(rid))

    def result(self) -> list[dict]:
        """Per filter: ``count``, ``digest`` and ``sample`` as ``id_digest`` answers them, and ``uncertain``."""
        return [{"count": c, "digest": f"{s:016x}", "sample": sorted(d.rid for d in h), "uncertain": u}
                for c, s, h, u in zip(self._count, self._sum, self._smallest, self._uncertain)]


class _Desc:
    """An id ordered backwards, so ``heapq`` (a min-heap) keeps the largest of the smallest on top."""

    __slots__ = ("rid",)

    def __init__(self, rid: str) -> None:
        self.rid = rid

    def __lt__(self, other: "_Desc") -> bool:
        return self.rid > other.rid
