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
import operator
import re
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


def id_hashes(ids: Any) -> list[int]:
    """Each id's 64-bit blake2b value (``id_sum`` of a subset is the sum of its members' values, mod 2**64):
    computed once per record read, not once per filter the record matches."""
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return [from_bytes(blake2b(rid.encode(), digest_size=8).digest(), "big") for rid in ids]


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


#: a word start: a character other than a space, at the start or after a space
_WORD_START = re.compile(r"(?<![^ ])[^ ]")


def _slices(doc: str) -> list[str]:
    """Candidate texts of one document: windows starting at its word starts, safe characters only."""
    starts = []
    for m in _WORD_START.finditer(doc):  # the first SLICE_STARTS only: a long document is not scanned to its end
        starts.append(m.start())
        if len(starts) == SLICE_STARTS:
            break
    out = []
    for length in SLICE_LENGTHS:
        for i in starts:
            text = doc[i : i + length].strip()
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
    words = [
        w
        for d in scanned
        for w in dict.fromkeys(d.split())
        if len(w) >= 4 and w.isascii() and all(c in SAFE_TEXT for c in w)
    ]
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
    for key in sorted(values)[: MAX_FILTERS // 2]:
        vals = values[key]
        exact = [v for v in vals if not isinstance(v, float)]
        if exact:
            value, count = _rarest(exact)
            candidates.append({"where": {key: {"$eq": value}}, "where_document": None, "share": count / n})
        numbers = [v for v in vals if _number(v)]
        edge = _edge(numbers) if numbers else None
        if edge is not None:
            candidates.append(
                {"where": {key: {"$gt": edge}}, "where_document": None, "share": sum(v > edge for v in numbers) / n}
            )
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


def _matcher(clause: dict) -> Any:
    """``matches`` for one filter, its clause taken apart once: ``f(document, metadata)``, the same answers."""
    contains = (clause.get("where_document") or {}).get("$contains")
    if contains is not None:
        return lambda document, metadata: isinstance(document, str) and contains in document
    ((key, cond),) = clause["where"].items()
    ((op, want),) = cond.items()
    if op == "$gt":
        tol, want_float = EDGE_RTOL * max(1.0, abs(want)), isinstance(want, float)

        def gt(document: Any, metadata: Any) -> Optional[bool]:
            if not metadata or key not in metadata:
                return False
            have = metadata[key]
            if isinstance(have, list):
                return None
            if not _number(have):
                return False
            if abs(have - want) <= tol and (want_float or isinstance(have, float)):  # ints compare exactly
                return None
            return have > want

        return gt
    return lambda document, metadata: matches(clause, document, metadata)


class Expected:
    """Per filter, what the records read so far say it matches: count, id digest, smallest ids, uncertain."""

    def __init__(self, filters: list[dict]) -> None:
        self.filters = filters
        self._match = [_matcher(f) for f in filters]
        self._count = [0] * len(filters)
        self._sum = [0] * len(filters)
        self._smallest: list[list] = [[] for _ in filters]  # max-heaps of the SAMPLE smallest, negated
        self._uncertain = [0] * len(filters)

    def update(self, ids: list, documents: Any, metadatas: Any) -> None:
        docs = documents if documents is not None else [None] * len(ids)
        metas = metadatas if metadatas is not None else [None] * len(ids)
        for j, match in enumerate(self._match):
            matched = []
            for rid, doc, meta in zip(ids, docs, metas):
                hit = match(doc, meta)
                if hit is None:
                    self._uncertain[j] += 1
                elif hit:
                    matched.append(rid)
            self._count[j] += len(matched)
            self._sum[j] = (self._sum[j] + id_sum(matched)) % (1 << 64)
            keep_smallest(self._smallest[j], matched)

    def result(self) -> list[dict]:
        """Per filter: ``count``, ``digest`` and ``sample`` as ``id_digest`` answers them, and ``uncertain``."""
        return [
            {"count": c, "digest": f"{s:016x}", "sample": sorted(d.rid for d in h), "uncertain": u}
            for c, s, h, u in zip(self._count, self._sum, self._smallest, self._uncertain)
        ]


class _Desc:
    """An id ordered backwards, so ``heapq`` (a min-heap) keeps the largest of the smallest on top."""

    __slots__ = ("rid",)

    def __init__(self, rid: str) -> None:
        self.rid = rid

    def __lt__(self, other: _Desc) -> bool:
        return self.rid > other.rid


def keep_smallest(heap: list, matched: list) -> None:
    """Fold ``matched`` into ``heap``, which keeps the SAMPLE smallest ids seen so far across batches."""
    for rid in heapq.nsmallest(SAMPLE, matched):
        if len(heap) < SAMPLE:
            heapq.heappush(heap, _Desc(rid))
        elif rid < heap[0].rid:
            heapq.heapreplace(heap, _Desc(rid))


# -- any filter, by the data: the user's own filters and the data checks (snapshot/data_checks.py) ------------
#
# Why a second evaluator: ``matches`` answers only the filters ``pick`` makes, whose meaning every release
# shares. A user's filter, and a data check on the stored values, may use operators whose meaning changed
# (``$ne`` on a record lacking the key, ``$contains`` on a string field): where the releases measured differ
# on a record, it is ``None`` (uncertain), and the record is left out of the judgement (see ``DataExpected``).

ORDER_OPS = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _all(parts: list) -> Optional[bool]:
    """Three-valued and: False wins, then unknown."""
    if any(p is False for p in parts):
        return False
    return None if any(p is None for p in parts) else True


def _any(parts: list) -> Optional[bool]:
    """Three-valued or: True wins, then unknown."""
    if any(p is True for p in parts):
        return True
    return None if any(p is None for p in parts) else False


def _equal(have: Any, want: Any) -> Optional[bool]:
    """``$eq`` by the data: types count; where releases measured differ, None."""
    if isinstance(have, bool) or isinstance(want, bool):
        return type(have) is type(want) and have == want
    if isinstance(want, str) or isinstance(have, str):
        if isinstance(want, str) and isinstance(have, str):
            return have == want
        try:  # 0.3.29 casts: "1" matches 1
            return None if float(want) == float(have) else False
        except (TypeError, ValueError):
            return False
    if _number(have) and _number(want):
        if type(have) is type(want):
            return have == want
        if have == want:
            return None  # 0.4.x: 1 does not match 1.0; later releases: it does
        if isinstance(have, int) and isinstance(want, float) and int(want) == have:
            return None  # 1.0-1.5 match an int by truncating the float asked for ($eq 1.5 matches 1)
        return False
    return False


def _condition(op: str, want: Any, present: bool, have: Any) -> Optional[bool]:
    """One ``{op: want}`` on one record's value of the key (``present``: the record has the key)."""
    if op in ("$ne", "$nin", "$not_contains"):
        if not present:
            return None  # before 0.5.12 a record lacking the key never matched; from it on, it does
        if isinstance(have, list):
            return (want not in have) if op == "$not_contains" else None
        if op == "$not_contains":
            return None  # on a string: refused by 0.x-1.4, every record from 1.5.0 on (where-contains-metadata)
        if op == "$ne":
            eq = _equal(have, want)
            return None if eq is None else not eq
        if not isinstance(want, list):
            return None
        return _all([None if e is None else not e for e in (_equal(have, w) for w in want)])
    if not present:
        return False
    if isinstance(have, list):
        return (want in have) if op == "$contains" else None  # 1.5's list values: only membership is pinned
    if op == "$eq":
        return _equal(have, want)
    if op == "$in":
        return _any([_equal(have, w) for w in want]) if isinstance(want, list) else None
    if op == "$contains":  # on a string: refused by 0.x-1.4, nothing from 1.5.0 on; no meaning the data pins
        return None
    if op in ORDER_OPS:
        if isinstance(have, bool) or isinstance(want, bool) or not (_number(have) and _number(want)):
            return False if _number(want) else None
        if (
            have != want
            and abs(have - want) <= EDGE_RTOL * max(1.0, abs(want))
            and (isinstance(have, float) or isinstance(want, float))
        ):
            return None  # within re-rounding distance of the edge, but not the value itself
        return ORDER_OPS[op](have, want)
    return None  # an operator the oracle does not know ($regex, ...): judged between releases only


_SAME_TYPE = (int, float, str)  # types whose ``_equal`` on two values of exactly that type is plain ``==``
_CMP = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _present_condition(op: str, want: Any) -> Any:
    """``_condition(op, want, True, have)`` as ``f(have)``, the condition taken apart once.

    Why: a data check asks dozens of conditions per key and the oracle evaluates each on every record
    (680k evaluations at 10k records); the common shapes skip the checks that cannot apply to their
    ``want``, and anything else is ``_condition`` itself (tested against it)."""
    if op in _CMP:
        if not _number(want):  # bool or not a number: nothing the data pins
            return lambda have: None
        cmp, tol, want_float = _CMP[op], EDGE_RTOL * max(1.0, abs(want)), isinstance(want, float)

        def order(have: Any) -> Optional[bool]:
            if isinstance(have, list):
                return None
            if isinstance(have, bool) or not isinstance(have, (int, float)):
                return False
            if have != want and abs(have - want) <= tol and (want_float or isinstance(have, float)):
                return None  # within re-rounding distance of the edge, but not the value itself
            return cmp(have, want)

        return order
    kind = type(want)
    if op in ("$eq", "$ne") and kind in _SAME_TYPE:
        ne = op == "$ne"

        def equal(have: Any) -> Optional[bool]:
            if type(have) is kind:
                return (have != want) if ne else (have == want)
            return _condition(op, want, True, have)

        return equal
    if op == "$contains":
        return lambda have: (want in have) if isinstance(have, list) else None
    if op == "$not_contains":
        return lambda have: (want not in have) if isinstance(have, list) else None
    return lambda have: _condition(op, want, True, have)


def _document_condition(where_document: Any) -> Any:
    """``record_matches(None, where_document, document, metadata)`` as ``f(document)`` for one
    ``$contains``/``$not_contains`` with a text (the data checks' full-text filters); None otherwise."""
    if not isinstance(where_document, dict) or len(where_document) != 1:
        return None
    ((op, want),) = where_document.items()
    if not isinstance(want, str):
        return None
    if op == "$contains":
        return lambda document: isinstance(document, str) and want in document
    if op == "$not_contains":
        return lambda document: (want not in document) if isinstance(document, str) else None
    return None


def where_matches(where: Any, metadata: Any) -> Optional[bool]:
    """Whether one record's metadata matches a ``where`` filter, by the data (None: releases differ)."""
    if not isinstance(where, dict) or not where:
        return None
    meta = metadata or {}
    parts = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                return None
            sub = [where_matches(c, meta) for c in cond]
            parts.append(_all(sub) if key == "$and" else _any(sub))
            continue
        if isinstance(key, str) and key.startswith("$"):
            return None
        ops = cond.items() if isinstance(cond, dict) else [("$eq", cond)]
        parts.extend(_condition(op, want, key in meta, meta.get(key)) for op, want in ops)
    return _all(parts)


def document_matches(where_document: Any, document: Any) -> Optional[bool]:
    """Whether one record's document matches a ``where_document`` filter, by the data."""
    if not isinstance(where_document, dict) or len(where_document) != 1:
        return None
    ((op, want),) = where_document.items()
    if op in ("$and", "$or"):
        if not isinstance(want, list) or not want:
            return None
        sub = [document_matches(c, document) for c in want]
        return _all(sub) if op == "$and" else _any(sub)
    if not isinstance(want, str):
        return None
    if op == "$contains":
        return isinstance(document, str) and want in document
    if op == "$not_contains":
        return (want not in document) if isinstance(document, str) else None  # no document: changed at 0.5.12
    return None


def record_matches(where: Any, where_document: Any, document: Any, metadata: Any) -> Optional[bool]:
    """A whole ``get(where=..., where_document=...)`` on one record, by the data."""
    parts = []
    if where:
        parts.append(where_matches(where, metadata))
    if where_document:
        parts.append(document_matches(where_document, document))
    return _all(parts) if parts else True


def _eq_only(f: dict) -> Optional[tuple]:
    """``(key, want)`` of a filter that is one ``$eq`` on one key with a scalar, else None."""
    where = f.get("where")
    if f.get("where_document") or not isinstance(where, dict) or len(where) != 1:
        return None
    ((key, cond),) = where.items()
    if not isinstance(key, str) or key.startswith("$"):
        return None
    if isinstance(cond, dict):
        if len(cond) != 1 or "$eq" not in cond:
            return None
        cond = cond["$eq"]
    return (key, cond) if isinstance(cond, (str, int, float, bool)) else None


def _one_condition(f: dict) -> Optional[tuple]:
    """``(key, op, want)`` of a filter that is one operator on one key, else None."""
    where = f.get("where")
    if f.get("where_document") or not isinstance(where, dict) or len(where) != 1:
        return None
    ((key, cond),) = where.items()
    if not isinstance(key, str) or key.startswith("$") or not isinstance(cond, dict) or len(cond) != 1:
        return None
    ((op, want),) = cond.items()
    return key, op, want


def _as_float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


class _EqIndex:
    """Every ``$eq`` filter on one key, looked up by the record's value instead of asked one by one.

    Why: a data check asks up to the budget's values per key; evaluating each on every record
    cost ``values x records`` (64 million evaluations per key on a million-record store). The
    lookups give exactly ``_equal``'s answers (tested against it): True for the same type and
    value; None for an int and a float of equal value, an int and a float that truncates to it,
    and a string and a number equal once cast (0.3.29); False otherwise.
    """

    def __init__(self) -> None:
        self.exact: dict[tuple, list[int]] = {}  # (type name, value) -> filters
        self.numeric: dict[float, list[tuple[int, str]]] = {}  # float(want) -> (filter, type name)
        self.cast: dict[float, list[int]] = {}  # float(string want) -> filters
        self.floats: list[tuple[float, int]] = []  # (float want, filter), sorted: truncation
        self.every: list[int] = []

    def add(self, j: int, want: Any) -> None:
        self.every.append(j)
        kind = "bool" if isinstance(want, bool) else type(want).__name__
        self.exact.setdefault((kind, want), []).append(j)
        if kind in ("int", "float"):
            f = _as_float(want)
            if f is not None:
                self.numeric.setdefault(f, []).append((j, kind))
            if kind == "float" and f == f and abs(f) != float("inf"):
                self.floats.append((want, j))
        elif kind == "str":
            f = _as_float(want)
            if f is not None:
                self.cast.setdefault(f, []).append(j)

    def done(self) -> None:
        self.floats.sort()

    def hits(self, have: Any) -> tuple[list[int], list[int]]:
        """(filters the value matches, filters whose matching releases differ on)."""
        if isinstance(have, list):
            return [], list(self.every)
        kind = "bool" if isinstance(have, bool) else type(have).__name__
        yes = list(self.exact.get((kind, have), ()))
        unsure: list[int] = []
        if kind == "str":
            f = _as_float(have)
            if f is not None:
                unsure.extend(j for j, _ in self.numeric.get(f, ()))
        elif kind in ("int", "float"):
            f = _as_float(have)
            if f is not None:
                unsure.extend(j for j, k in self.numeric.get(f, ()) if k != kind)
                unsure.extend(self.cast.get(f, ()))
            if kind == "int" and self.floats:
                import bisect

                lo = bisect.bisect_right(self.floats, (have - 1, float("inf")))
                hi = bisect.bisect_left(self.floats, (have + 1, -1))
                unsure.extend(j for w, j in self.floats[lo:hi] if w != have and int(w) == have)
        return yes, unsure


class DataExpected:
    """Per filter, what the records read say it matches: the certain matches (count, digest, smallest
    ids) and, apart, the records whose matching releases differ on (count, digest), so an answer is
    judged right if it is the certain set with or without them (they go all one way in a release).

    One ``$eq`` on one key is looked up (``_EqIndex``); every other filter is evaluated per record,
    each condition taken apart once (``_present_condition``, ``_document_condition``), and each record's
    id hashed once per page (``id_hashes``), not once per filter it matches."""

    def __init__(self, filters: list[dict]) -> None:
        self.filters = filters
        self._eq: dict[str, _EqIndex] = {}
        self._single: dict[str, list[tuple[int, str, Any]]] = {}  # key -> (filter, op, want): one condition
        self._general = []
        for j, f in enumerate(filters):
            simple, one = _eq_only(f), _one_condition(f)
            if simple is not None:
                self._eq.setdefault(simple[0], _EqIndex()).add(j, simple[1])
            elif one is not None:
                self._single.setdefault(one[0], []).append((j, one[1], one[2]))
            else:
                self._general.append(j)
        self._compiled = {
            key: [(j, _present_condition(op, want)) for j, op, want in conds] for key, conds in self._single.items()
        }
        self._documents = {j: _document_condition(filters[j].get("where_document")) for j in self._general}
        for j in self._general:
            if filters[j].get("where"):
                self._documents[j] = None
        # a record lacking the key: these operators' answer changed at 0.5.12 (see ``_condition``)
        self._if_missing = {
            key: [j for j, op, _ in conds if op in ("$ne", "$nin", "$not_contains")]
            for key, conds in self._single.items()
        }
        for index in self._eq.values():
            index.done()
        self._count = [0] * len(filters)
        self._sum = [0] * len(filters)
        self._smallest: list[list] = [[] for _ in filters]
        self._u_count = [0] * len(filters)
        self._u_sum = [0] * len(filters)

    def update(self, ids: list, documents: Any, metadatas: Any) -> None:
        docs = documents if documents is not None else [None] * len(ids)
        metas = metadatas if metadatas is not None else [None] * len(ids)
        n = len(self.filters)
        yes: list[list[int]] = [[] for _ in range(n)]  # per filter, the rows it matches
        unsure: list[list[int]] = [[] for _ in range(n)]  # and the rows releases differ on
        if self._eq:
            for i, meta in enumerate(metas):
                for key, value in (meta or {}).items():
                    index = self._eq.get(key)
                    if index is None:
                        continue
                    hit, doubt = index.hits(value)
                    for j in hit:
                        yes[j].append(i)
                    for j in doubt:
                        unsure[j].append(i)
        if self._single:
            compiled, if_missing = list(self._compiled.items()), self._if_missing
            for i, meta in enumerate(metas):
                meta = meta or {}
                for key, conds in compiled:
                    if key not in meta:
                        for j in if_missing[key]:
                            unsure[j].append(i)
                        continue
                    have = meta[key]
                    for j, cond in conds:
                        hit = cond(have)
                        if hit is None:
                            unsure[j].append(i)
                        elif hit:
                            yes[j].append(i)
        for j in self._general:
            f, cond = self.filters[j], self._documents[j]
            matched, doubt = yes[j], unsure[j]
            for i, (doc, meta) in enumerate(zip(docs, metas)):
                hit = (
                    cond(doc)
                    if cond is not None
                    else record_matches(f.get("where"), f.get("where_document"), doc, meta)
                )
                if hit is None:
                    doubt.append(i)
                elif hit:
                    matched.append(i)
        hashes: list[int] | None = None
        for j in range(n):
            rows, doubt = yes[j], unsure[j]
            if not rows and not doubt:
                continue
            if hashes is None:
                hashes = id_hashes(ids)
            self._count[j] += len(rows)
            self._sum[j] = (self._sum[j] + sum(hashes[i] for i in rows)) % (1 << 64)
            self._u_count[j] += len(doubt)
            self._u_sum[j] = (self._u_sum[j] + sum(hashes[i] for i in doubt)) % (1 << 64)
            keep_smallest(self._smallest[j], [ids[i] for i in rows])

    def result(self) -> list[dict]:
        """Per filter: ``count``, ``digest``, ``sample`` (certain matches), ``uncertain`` and its
        ``uncertain_digest``."""
        return [
            {
                "count": c,
                "digest": f"{s:016x}",
                "sample": sorted(d.rid for d in h),
                "uncertain": uc,
                "uncertain_digest": f"{us:016x}",
            }
            for c, s, h, uc, us in zip(self._count, self._sum, self._smallest, self._u_count, self._u_sum)
        ]


def answer_right(answer: Any, expected: dict) -> Optional[bool]:
    """A release's ``id_digest`` answer against ``DataExpected``: right, wrong, or None (cannot tell:
    some uncertain records in, some out)."""
    if not isinstance(answer, dict):
        return False
    got = (answer["count"], answer["digest"])
    certain = (expected["count"], expected["digest"])
    if got == certain:
        return True
    if not expected.get("uncertain"):
        return False
    both = (
        expected["count"] + expected["uncertain"],
        f"{(int(expected['digest'], 16) + int(expected['uncertain_digest'], 16)) % (1 << 64):016x}",
    )
    if got == both:
        return True
    lo, hi = expected["count"], expected["count"] + expected["uncertain"]
    return None if lo < answer["count"] < hi else False


#: a list-valued key's elements are sampled under the key's name with this suffix ("tags[]")
ELEMENTS = "[]"


class ValueSampler:
    """Per metadata key, the distinct stored values of the types asked for: all of them up to ``budget``,
    then a uniform random sample of the values seen after (reservoir), with how many were seen.

    Bounded: at most ``budget`` values and ``max_keys`` keys are kept, whatever the store holds.
    """

    def __init__(self, types: tuple, budget: int, seed: int = 0, max_keys: int = 64) -> None:
        import random

        self.types, self.budget, self.max_keys = types, budget, max_keys
        self.values: dict[str, dict] = {}  # key -> {(type name, value): None}, insertion ordered
        self.seen: dict[str, int] = {}  # key -> values seen beyond the first ``budget`` distinct ones
        self.distinct_capped: dict[str, bool] = {}
        self._rng = random.Random(seed)
        self._types = frozenset(types)

    def _wanted(self, value: Any) -> bool:
        return type(value) in self._types  # exact types: True is not an int here

    def update(self, metadatas: Any) -> None:
        for meta in metadatas or []:
            for key, value in (meta or {}).items():
                if not isinstance(key, str) or key.startswith("chroma:") or not self._wanted(value):
                    continue
                if isinstance(value, list):  # a list value: its elements, apart (``$contains`` asks one)
                    for element in value:
                        if isinstance(element, (str, int, float)):
                            self._add(key + ELEMENTS, element)
                    continue
                self._add(key, value)

    def _add(self, key: str, value: Any) -> None:
        if key not in self.values:
            if len(self.values) >= self.max_keys:
                return
            self.values[key], self.seen[key] = {}, 0
        kept = self.values[key]
        tag = (type(value).__name__, value)
        if tag in kept:
            return
        if len(kept) < self.budget:
            kept[tag] = None
            return
        self.distinct_capped[key] = True
        self.seen[key] += 1
        slot = self._rng.randrange(self.budget + self.seen[key])
        if slot < self.budget:  # replace a random kept value: every value seen stays equally likely
            victim = list(kept)[slot]
            del kept[victim]
            kept[tag] = None

    def result(self) -> dict[str, dict]:
        """Per key: ``values`` (sorted) and ``sampled`` (more distinct values than the budget were seen)."""
        out = {}
        for key, kept in self.values.items():
            vals = sorted((v for _, v in kept), key=lambda v: (str(type(v)), v))
            out[key] = {"values": vals, "sampled": bool(self.distinct_capped.get(key))}
        return out
