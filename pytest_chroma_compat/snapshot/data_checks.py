"""Data checks: every contract whose effect depends on what a store holds, asked of *this* store's values.

Why: the fixed filters of the ``filters`` check (``worker/filter_oracle.pick``) are
few and chosen so every release means the same by them; a finding about stored
values (1.x misses some float64 values a 0.5/0.6 store holds when asked ``$eq``
with the value itself) never shows on them. A contract row in
``contracts/table.toml`` with ``data_check = {types, operators}`` says which
values and operators carry the effect; here, for every collection and every
metadata key holding values of those types, each operator is asked with the
key's own stored values (every distinct value up to the budget, then a random
sample), on the release that wrote the store (copy A) and on the target (copy B,
opened in place or imported), and each answer is judged against the records the
source reads back (``filter_oracle.DataExpected``). A new finding adds a row, not
code. The user's own filters (``user_filters.py``) ride on the same two passes.
Four kinds of row (``KINDS``): stored values; ``complement`` ($ne/$nin, whose answer on
a record lacking the key changed at 0.5.12: such records are counted apart and each
release's answer placed on one side, so a change of meaning is NOT SAFE only where
the store holds such records); ``documents`` (full-text search with substrings of
the stored documents); ``order`` (ids in ``get()`` order, paged, on both releases:
``order_check.py``). List values are asked per element (type ``list``).

Cost: two reads of the collection's metadata on the source (documents too where it has
them: the judging pass for the full-text check, the sampling pass on its first
``DOCUMENT_PAGES`` pages only; each reads the next page while the host works on
this one), and at most
``budget x operators`` filters per key on the target (the old release is asked
only where the target's answer is not the data's), in batches (``id_digests``:
one round trip per batch), answered while the judging pass reads. ``$eq`` is judged
by lookup (``filter_oracle._EqIndex``);
operators that match most of a store or are judged record by record get fewer
values on a large store (``WIDE_MATCHES``); the report says how many values were
tried per key.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.engine.worker import filter_oracle
from pytest_chroma_compat.snapshot.result import Check

#: distinct stored values asked per key and operator (all of them when a key holds fewer)
DEFAULT_BUDGET = 64
#: the budget of a check the upgrade crosses when the user turned data checks off (--data-budget 0)
MANDATORY_BUDGET = 32
#: records x values a wide operator may cost per key: one that matches most of a store ($gte, $lte, $ne,
#: $not_contains: ~11 us per matched record on 1.5.9), or that the oracle evaluates record by record
#: ($contains; ``$eq`` is looked up, ``filter_oracle._EqIndex``), gets fewer values on a large store
#: (64 up to 3.1k records, 4 from 50k on), never fewer than WIDE_MIN
WIDE_MATCHES = 200_000
WIDE_MIN = 4
WIDE_OPS = frozenset({"$gte", "$gt", "$lte", "$lt", "$ne", "$nin", "$contains", "$not_contains"})
#: filters per ``id_digests`` call: one round trip for many, a bounded message each way
CALL_BATCH = 256
PAGE = 1000
TYPES = {"float": float, "int": int, "bool": bool, "str": str, "list": list}  # list: its elements, one by one
EXAMPLES = 5
#: how a row's check picks what it asks (``data_check.kind``):
#: values      each operator with each stored value of each key of ``types`` (the default)
#: complement  the same, for operators whose answer on a record *lacking the key* changed (``$ne``/``$nin``
#:             at 0.5.12): those records are counted apart and each release's answer is placed on one
#:             side or the other (``complement_outcome``), so a change of meaning is named as such
#: documents   ``where_document`` operators with substrings of the stored documents (full-text search);
#:             ``$not_contains`` as ``complement``, records without a document counted apart
#: order       no values: both releases' ids in get() order, paged, and get(ids=...) (``order_check.py``)
KINDS = ("values", "complement", "documents", "order")
#: operators whose answer on a record lacking the key (or the document) is what a complement check
#: judges; the effect is the same for every value asked, so a few values per key are enough
COMPLEMENT_OPS = frozenset({"$ne", "$nin", "$not_contains"})
COMPLEMENT_VALUES = 4
#: the pseudo key the stored documents' substrings are sampled and reported under
DOCUMENTS = "(documents)"
#: pages whose documents give the substrings: the sampling pass reads documents no further (a large
#: store's documents are read once, by the judging pass, not twice)
DOCUMENT_PAGES = 8


@dataclass(frozen=True)
class DataCheck:
    """One contract's data check, as its table row gives it."""

    contract_id: str
    title: str
    types: tuple[str, ...]
    operators: tuple[str, ...]
    kind: str = "values"


def table_checks() -> list[DataCheck]:
    """The data checks of the contract table (``data_check`` rows), in table order."""
    from pytest_chroma_compat.contracts.measure import load_table

    out = []
    for c in load_table():
        spec = c.data_check
        kind = spec.get("kind", "values") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and (
            kind == "order" or spec.get("operators") and (spec.get("types") or kind == "documents")
        ):
            unknown = [t for t in spec.get("types", ()) if t not in TYPES]
            if unknown:
                raise ValueError(f"contract {c.id}: data_check types {unknown} unknown; known: {', '.join(TYPES)}")
            if kind not in KINDS:
                raise ValueError(f"contract {c.id}: data_check kind {kind!r} unknown; known: {', '.join(KINDS)}")
            out.append(DataCheck(c.id, c.title, tuple(spec.get("types", ())), tuple(spec.get("operators", ())), kind))
    return out


def crossed_ids(old: str, new: str, lookup: Any = None) -> set[str] | None:
    """The data-check contracts this upgrade crosses, as measured (None: not measured here); ``lookup``:
    a ``measure.Lookup`` of this pair already under way (validate's one lookup for the data checks and
    the report)."""
    if old == new:
        return set()
    try:
        from pytest_chroma_compat.contracts import measure

        rows = [c for c in measure.load_table() if c.data_check]
        if lookup is not None and (lookup.old, lookup.new) == (old, new):
            return {x.contract.id for x in lookup.crossed(rows)}
        return {x.contract.id for x in measure.crossed(old, new, contracts=rows)}
    except Exception:  # noqa: BLE001 - the checks still run, only "mandatory" is unknown
        return None


# -- reading the source's records ---------------------------------------------------------------------


def _pages(
    col: Collection, count: int, documents: bool, batch_size: int, document_pages: int | None
) -> Iterator[tuple[list, list | None, list | None]]:
    from pytest_chroma_compat.snapshot.compare import CHUNK_PAGES, _source_ids

    pages = 0
    for chunk in _source_ids(col, batch_size * CHUNK_PAGES, count):
        for lo in range(0, len(chunk), batch_size):
            docs = documents and (document_pages is None or pages < document_pages)
            got = col.get(ids=chunk[lo : lo + batch_size], include=["metadatas"] + (["documents"] if docs else []))
            pages += 1
            yield list(got["ids"]), got.get("documents") if docs else None, got.get("metadatas")


def records(
    col: Collection, count: int, *, documents: bool = False, batch_size: int = PAGE, document_pages: int | None = None
) -> Iterator[tuple[list, list | None, list | None]]:
    """The source's records page by page (ids, documents, metadatas), read by id like ``compare`` does;
    ``document_pages``: documents on the first so many pages only (then None).

    The next page is read (in a thread) while the caller works on this one: the source's worker and
    the host's oracle then run at once instead of taking turns. One page ahead: bounded memory."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for page in _pages(col, count, documents, batch_size, document_pages):
                while not stop.is_set():
                    try:
                        ahead.put(("page", page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(("end", None))
        except BaseException as exc:  # raised in the caller, where it would have been
            ahead.put(("error", exc))

    reader = threading.Thread(target=read, name="data-pages", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while reader.is_alive():  # it may wait to hand over a page nobody takes
            try:
                ahead.get(timeout=0.1)
            except queue.Empty:
                pass


@dataclass
class Asked:
    """One filter asked of both releases, with what it is for."""

    where: dict | None
    where_document: dict | None
    check: str  # a contract id, or "user-filters"
    key: str | None = None
    op: str | None = None
    origin: str | None = None  # where a user's filter came from (file:line)
    expected: dict | None = None
    complement: bool = False  # a complement check's $ne/$nin/$not_contains: records lacking ``key`` apart
    missing: dict | None = None  # those records: count, digest, sample (``expect``)

    def clause(self) -> dict:
        return {k: v for k, v in (("where", self.where), ("where_document", self.where_document)) if v is not None}


@dataclass
class Plan:
    """Per data check and key: the values tried, how many, whether sampled, and the filters."""

    asked: list[Asked] = field(default_factory=list)
    tried: dict[str, dict[str, dict]] = field(default_factory=dict)  # check -> key -> {values, sampled, wide}


def plan(checks: list[DataCheck], sampled: dict[str, dict], *, budget: dict[str, int], count: int) -> Plan:
    """The filters of every data check: each operator with each stored value of each key of its types."""
    out = Plan()
    for dc in checks:
        keys = sampled.get(dc.contract_id) or {}
        n = budget[dc.contract_id]
        wide_n = max(WIDE_MIN, min(n, WIDE_MATCHES // max(count, 1)))
        out.tried[dc.contract_id] = {}
        for key, got in sorted(keys.items()):
            values = got["values"][:n]
            wide = values if wide_n >= len(values) else values[:: max(1, len(values) // wide_n)][:wide_n]
            few = wide[:: max(1, len(wide) // COMPLEMENT_VALUES)][:COMPLEMENT_VALUES]
            out.tried[dc.contract_id][key] = {
                "values": len(values),
                "sampled": got["sampled"],
                "budget": n,
                "wide values": len(wide),
            }
            if dc.kind != "values" and COMPLEMENT_OPS & set(dc.operators):
                out.tried[dc.contract_id][key]["complement values"] = len(few)
            if dc.kind == "documents" and count > DOCUMENT_PAGES * PAGE:  # a sample of the first pages' texts
                out.tried[dc.contract_id][key].update(
                    {"sampled": True, "from the first records": DOCUMENT_PAGES * PAGE}
                )
            elements = key.endswith(filter_oracle.ELEMENTS)  # a list key's elements: $contains tests membership
            name = key[: -len(filter_oracle.ELEMENTS)] if elements else key
            for op in dc.operators:
                complement = dc.kind != "values" and op in COMPLEMENT_OPS
                for v in few if complement else wide if op in WIDE_OPS else values:
                    if op in ("$contains", "$not_contains") and not isinstance(v, str) and not elements:
                        continue
                    if op == "$nin":
                        v = [v]
                    if dc.kind == "documents":
                        out.asked.append(Asked(None, {op: v}, dc.contract_id, name, op, complement=complement))
                    else:
                        out.asked.append(Asked({name: {op: v}}, None, dc.contract_id, name, op, complement=complement))
    return out


def _document_texts(documents: Any, rng: Any) -> list[dict]:
    """One substring of each stored document, as ``filter_oracle``'s full-text filters take them
    (6-12 characters from a word start, characters every release reads alike), as sampler input."""
    out = []
    for doc in documents or []:
        if isinstance(doc, str):
            texts = filter_oracle._slices(doc)
            if texts:
                out.append({DOCUMENTS: texts[rng.randrange(len(texts))]})
    return out


def sample_values(
    src: Collection, checks: list[DataCheck], budget: dict[str, int], count: int, seed: int, batch_size: int
) -> dict[str, dict]:
    """Pass one: per data check, per key, its distinct stored values (``filter_oracle.ValueSampler``)."""
    import random

    samplers = {
        dc.contract_id: filter_oracle.ValueSampler(
            (str,) if dc.kind == "documents" else tuple(TYPES[t] for t in dc.types), budget[dc.contract_id], seed
        )
        for dc in checks
    }
    texts = [dc.contract_id for dc in checks if dc.kind == "documents"]
    rng = random.Random(seed)
    for _, documents, metas in records(
        src, count, documents=bool(texts), batch_size=batch_size, document_pages=DOCUMENT_PAGES
    ):
        from_docs = _document_texts(documents, rng) if texts else []
        for dc in checks:
            samplers[dc.contract_id].update(from_docs if dc.kind == "documents" else metas)
    return {cid: s.result() for cid, s in samplers.items()}


def expect(src: Collection, asked: list[Asked], count: int, batch_size: int) -> None:
    """Pass two: what the records read say each filter matches (``filter_oracle.DataExpected``)."""
    if not asked:
        return
    oracle = filter_oracle.DataExpected([{"where": a.where, "where_document": a.where_document} for a in asked])
    docs = any(a.where_document for a in asked)
    lacking = _Lacking({a.key if a.where_document is None else DOCUMENTS for a in asked if a.complement})
    for ids, documents, metas in records(src, count, documents=docs, batch_size=batch_size):
        oracle.update(ids, documents, metas)
        lacking.update(ids, documents, metas)
    for a, e in zip(asked, oracle.result()):
        a.expected = e
        if a.complement:
            a.missing = lacking.result(a.key if a.where_document is None else DOCUMENTS)


class _Lacking:
    """Per key (or ``DOCUMENTS``), the records lacking it: count, digest and the smallest ids."""

    def __init__(self, keys: set) -> None:
        self.keys = keys
        self.found: dict[str, list] = {k: [0, 0, []] for k in keys}

    def update(self, ids: list, documents: Any, metadatas: Any) -> None:
        for key in self.keys:
            if key == DOCUMENTS:
                docs = documents if documents is not None else [None] * len(ids)
                gone = [rid for rid, d in zip(ids, docs) if not isinstance(d, str)]
            else:
                metas = metadatas if metadatas is not None else [None] * len(ids)
                gone = [rid for rid, m in zip(ids, metas) if key not in (m or {})]
            got = self.found[key]
            got[0] += len(gone)
            got[1] = (got[1] + filter_oracle.id_sum(gone)) % (1 << 64)
            got[2] = sorted(got[2] + gone)[: filter_oracle.SAMPLE]

    def result(self, key: str) -> dict:
        count, digest, sample = self.found[key]
        return {"count": count, "digest": f"{digest:016x}", "sample": sample}


def answers(col: Collection, asked: list[Asked]) -> list[dict | str]:
    """Each filter's ``id_digest`` answer on one release, or ``"error: ..."``; batched."""
    out: list[dict | str] = []
    for lo in range(0, len(asked), CALL_BATCH):
        batch = asked[lo : lo + CALL_BATCH]
        try:
            got = col._call("id_digests", filters=[a.clause() for a in batch])
        except (ChromaError, WorkerError) as exc:  # the worker died: every filter of the batch is unanswered
            from pytest_chroma_compat.snapshot.compare import _err

            got = [{"error": _err(exc)} for _ in batch]
        out.extend(f"error: {g['error']}" if "error" in g else g for g in got)
    return out


# -- judging one filter --------------------------------------------------------------------------------

#: outcome -> (status for a data check, status for a user's filter)
STATUS = {
    "right": ("pass", "pass"),
    "fixed": ("pass", "pass"),
    "refused by both": ("pass", "info"),
    "same, not judged": ("pass", "pass"),
    "now answers": ("info", "info"),
    # the old release refused it: only code that uses the filter meets the change (the user's filters: not safe)
    "now answers wrongly": ("info", "fail"),
    "now silently matches nothing": ("info", "fail"),
    "now raises": ("fail", "fail"),
    "wrong": ("fail", "fail"),
    "changed": ("fail", "fail"),
    "pre-existing": ("pre-existing", "pre-existing"),
    # a complement check: both answers right by the data, on opposite sides for the records lacking the key
    "meaning changed": ("fail", "fail"),
}


def outcome(s: dict | str, t: dict | str, e: dict | None) -> str:
    """What happened to one filter across the upgrade, judged against the data where it can be.

    ``s`` None: the old release was not asked (the target answered as the data says)."""
    if s is None:
        return "right"
    if isinstance(t, str):
        return "refused by both" if isinstance(s, str) else "now raises"
    t_ok = filter_oracle.answer_right(t, e) if e is not None else None
    if isinstance(s, str):
        if t["count"] == 0:  # whatever the data says: code that caught the error now gets []
            return "now silently matches nothing"
        return "now answers" if t_ok is not False else "now answers wrongly"
    s_ok = filter_oracle.answer_right(s, e) if e is not None else None
    same = (s["count"], s["digest"]) == (t["count"], t["digest"])
    if t_ok is True:  # both right, yet apart: the records whose meaning changed went the other way
        return "fixed" if s_ok is False else "right" if same else "changed"
    if t_ok is False:
        if s_ok is True:
            return "wrong"
        return "pre-existing" if same and s_ok is False else "changed" if not same else "same, not judged"
    return "same, not judged" if same else "changed"


def _side(answer: dict | str | None, e: dict, m: dict) -> str | None:
    """Which definition an answer follows: "without" or "with" the records lacking the key, or None."""
    if not isinstance(answer, dict):
        return None
    got = (answer["count"], answer["digest"])
    if got == (e["count"], e["digest"]):
        return "without"
    both = (e["count"] + m["count"], f"{(int(e['digest'], 16) + int(m['digest'], 16)) % (1 << 64):016x}")
    return "with" if got == both else None


def complement_outcome(a: Asked, s: dict | str | None, t: dict | str) -> str:
    """A complement check's filter: the old release's answer says how it defines the records lacking
    the key (or the document) on this data; the new one's is right if it follows the same definition,
    "meaning changed" if it follows the other. Anything else is judged as any filter (``outcome``)."""
    e, m = a.expected, a.missing
    if (
        e is None
        or not m
        or not m["count"]
        or (e.get("uncertain"), e.get("uncertain_digest")) != (m["count"], m["digest"])
    ):
        return outcome(s, t, e)
    old, new = _side(s, e, m), _side(t, e, m)
    if old and new:
        return "right" if old == new else "meaning changed"
    return outcome(s, t, e)


def said(answer: dict | str) -> str:
    if isinstance(answer, str):
        return answer
    first = ", ".join(answer["sample"][:3]) + (", ..." if answer["count"] > 3 else "")
    return f"{answer['count']} id(s)" + (f" ({first})" if answer["count"] else "")


def explain(a: Asked, what: str, s: dict | str, t: dict | str, versions: tuple[str, str]) -> str:
    """One filter's outcome in a sentence, with the data's answer."""
    asked = json.dumps(a.clause(), ensure_ascii=False)
    e = a.expected
    data = (
        ""
        if e is None
        else f"; the data has {e['count']} matching record(s)"
        + (f" ({', '.join(e['sample'][:3])})" if e["count"] else "")
        + (f" and {e['uncertain']} whose matching the releases differ on" if e.get("uncertain") else "")
    )
    old, new = versions
    if what == "meaning changed":
        m = a.missing or {}
        lacking = "have no document" if a.where_document else f"lack key {a.key!r}"
        gone = "leaves them out" if _side(s, e or {}, m) == "without" else "includes them"
        comes = "includes them" if gone == "leaves them out" else "leaves them out"
        return (
            f"{asked}: {m.get('count')} record(s) {lacking} ({', '.join(m.get('sample', [])[:3])}); "
            f"chromadb {old} {gone} ({said(s)}), {new} {comes} ({said(t)}): the same filter matches "
            f"different records on this store because it holds records that {lacking}"
        )
    if what == "now silently matches nothing":
        return (
            f"{asked}: now silently matches nothing: chromadb {old} raised ({s[len('error: ') :]}), {new} "
            f"answers []{data}"
        )
    if what == "now raises":
        return f"{asked}: chromadb {new} raises ({t}); {old} answered {said(s)}{data}"
    if what == "pre-existing":
        return f"{asked}: both releases ({old}, {new}) answer {said(t)}{data}"
    return f"{asked}: chromadb {new} answers {said(t)}, {old} {said(s)}{data}"


def judge(asked: list[Asked], s_answers: list, t_answers: list) -> list[tuple[Asked, str, dict | str, dict | str]]:
    return [
        (a, complement_outcome(a, s, t) if a.complement else outcome(s, t, a.expected), s, t)
        for a, s, t in zip(asked, s_answers, t_answers)
    ]


def ask_both(src: Collection, tgt: Collection, asked: list[Asked], t_ans: list | None = None) -> tuple[list, list]:
    """The target answers every filter (``t_ans``: already answered); the old release only those the
    target did not answer as the data says, and the user's own (shown side by side). Why: most answers
    are right, and then the old release's answer changes nothing; on two cores asking it everything
    doubled the checks' cost."""
    t_ans = answers(tgt, asked) if t_ans is None else t_ans
    need = [
        i
        for i, (a, t) in enumerate(zip(asked, t_ans))
        if a.check == "user-filters"
        or a.expected is None
        or a.expected.get("uncertain")
        or isinstance(t, str)
        or filter_oracle.answer_right(t, a.expected) is not True
    ]
    s_ans: list = [None] * len(asked)
    for i, s in zip(need, answers(src, [asked[i] for i in need])):
        s_ans[i] = s
    return s_ans, t_ans


def _worst(statuses: list[str]) -> str:
    for status in ("fail", "pre-existing", "info"):
        if status in statuses:
            return status
    return "pass"


def data_check_result(
    dc: DataCheck,
    label: str,
    judged: list,
    tried: dict,
    versions: tuple[str, str],
    mandatory: bool | None,
    seconds: float,
) -> Check:
    """One Check per collection and data check: the values tried per key, and the first bad answer."""
    name = f"data:{dc.contract_id}"
    per_key = ", ".join(
        f"{k} {v['values']}"
        + (f" (a random sample: more than {v['values']} distinct)" if v["sampled"] else " (every distinct value)")
        for k, v in tried.items()
    )
    budget = next(iter(tried.values()))["budget"] if tried else None
    evidence: dict[str, Any] = {
        "contract": dc.contract_id,
        "operators": list(dc.operators),
        "types": list(dc.types),
        "budget per key": budget,
        "values tried per key": tried,
        "mandatory": mandatory,
        "filters asked": len(judged),
    }
    if mandatory:
        evidence["why mandatory"] = f"the upgrade crosses contract {dc.contract_id} (measured)"
    if not tried:
        what = (
            "no record has a document"
            if dc.kind == "documents"
            else f"no metadata key holds {'/'.join(dc.types)} values"
        )
        return Check(name, "pass", f"{what}: nothing to ask ({dc.title})", label, evidence, seconds)
    statuses = [STATUS[what][0] for _, what, _, _ in judged]
    status = _worst(statuses)
    own = (
        "substrings of the stored documents (full-text search)"
        if dc.kind == "documents"
        else "each key's own stored values"
    )
    tried_words = f"{' '.join(dc.operators)} asked with {own}; values tried per key: {per_key} (budget {budget})" + (
        "; mandatory: the upgrade crosses this contract" if mandatory else ""
    )
    lacking = {}
    for a, _, _, _ in judged:
        if a.complement and a.missing is not None:
            lacking[a.key or "?"] = a.missing["count"]
    if lacking:  # a complement check: whether the store holds records its change of meaning touches
        evidence["records lacking the key"] = lacking
        what = "without a document" if dc.kind == "documents" else "lacking the key"
        tried_words += (
            "; records "
            + what
            + ": "
            + ", ".join(f"{k} {n}" for k, n in lacking.items())
            + ("" if any(lacking.values()) else f" (the change of meaning of {dc.contract_id} cannot touch this data)")
        )
    if status == "pass":
        return Check(
            name, "pass", f"{tried_words}; chromadb {versions[1]} answers as the data says", label, evidence, seconds
        )
    bad = [(a, what, s, t) for a, what, s, t in judged if STATUS[what][0] == status]
    by_key: dict[str, dict[str, int]] = {}
    for a, _what, _, _ in bad:
        by_key.setdefault(a.key or "?", {}).setdefault(a.op or "?", 0)
        by_key[a.key or "?"][a.op or "?"] += 1
    asked_per = {}
    for a, _, _, _ in judged:
        asked_per[(a.key, a.op)] = asked_per.get((a.key, a.op), 0) + 1
    counts = "; ".join(
        f"key {k!r}: " + ", ".join(f"{op} {n} of {asked_per[(k, op)]}" for op, n in ops.items())
        for k, ops in by_key.items()
    )
    first = bad[0]
    evidence["wrong answers per key and operator"] = by_key
    evidence["examples"] = [
        {
            **a.clause(),
            "outcome": what,
            "source": s,
            "target": t,
            "expected from the data": {k: (a.expected or {}).get(k) for k in ("count", "sample", "uncertain")},
        }
        for a, what, s, t in bad[:EXAMPLES]
    ]
    value = (
        next(iter(next(iter(first[0].where.values())).values()))
        if first[0].where
        else next(iter(first[0].where_document.values()))
        if first[0].where_document
        else None
    )
    head = (
        f"documents, operator {first[0].op}, text {value!r}: "
        if first[0].where_document
        else f"key {first[0].key!r}, operator {first[0].op}, value {value!r}: "
        if first[0].key
        else ""
    )
    changed = [a for a, what, _, _ in bad if what == "meaning changed"]
    words = {
        "fail": f"chromadb {versions[1]} answers filters on the store's own values wrongly"
        if not changed
        else f"the upgrade changes which records {', '.join(sorted({a.op or '?' for a in changed}))} match on this "
        f"store: it holds records "
        + ("without a document" if dc.kind == "documents" else "lacking the key")
        + f" (contract {dc.contract_id}), NOT SAFE for code that filters this way",
        "pre-existing": "both releases answer filters on the store's own values wrongly",
        "info": "filters the old release refused now answer (code that caught the error sees a different answer)",
    }[status]
    said_first = explain(first[0], first[1], first[2], first[3], versions)
    return Check(
        name, status, f"{words} ({counts}); first: {head}{said_first}; {tried_words}", label, evidence, seconds
    )


def run_collection(
    label: str,
    src: Collection,
    tgt: Collection,
    *,
    count: int,
    checks: list[DataCheck],
    budget: dict[str, int],
    mandatory: set[str] | None,
    seed: int = 0,
    batch_size: int = PAGE,
    user: list[Asked] | None = None,
) -> tuple[list[Check], list]:
    """Every data check (and the user's filters, ``user``) on one collection: the checks, and the user's
    filters judged (``user_filters.result`` makes their check)."""
    from pytest_chroma_compat.snapshot.order_check import order_result

    ordered = {
        dc.contract_id: order_result(
            dc.contract_id,
            dc.title,
            label,
            src,
            tgt,
            count=count,
            budget=budget[dc.contract_id],
            seed=seed,
            mandatory=None if mandatory is None else dc.contract_id in mandatory,
        )
        for dc in checks
        if dc.kind == "order"
    }
    every, checks = checks, [dc for dc in checks if dc.kind != "order"]
    started = time.monotonic()
    versions = (src.client.release.version, tgt.client.release.version)
    sampled = sample_values(src, checks, budget, count, seed, batch_size) if checks else {}
    p = plan(checks, sampled, budget=budget, count=count)
    user = list(user or [])
    asked = p.asked + user
    if asked:
        # the target answers (its worker) while the data says what each filter matches (the source's worker
        # reads, the host evaluates): nothing of one depends on the other until the old release is asked
        with ThreadPoolExecutor(1, thread_name_prefix="target-answers") as pool:
            target_answers = pool.submit(answers, tgt, asked)
            try:
                expect(src, asked, count, batch_size)
            finally:
                target_answers.exception()  # waits for it; an error of ``expect`` stays the one raised
        s_ans, t_ans = ask_both(src, tgt, asked, target_answers.result())
    else:
        s_ans, t_ans = [], []
    judged = judge(asked, s_ans, t_ans)
    seconds = time.monotonic() - started
    out = []
    for dc in every:
        if dc.contract_id in ordered:
            out.append(ordered[dc.contract_id])
            continue
        mine = [j for j in judged if j[0].check == dc.contract_id]
        crossed = None if mandatory is None else dc.contract_id in mandatory
        out.append(data_check_result(dc, label, mine, p.tried.get(dc.contract_id, {}), versions, crossed, seconds))
    return out, [j for j in judged if j[0].check == "user-filters"]


def budgets(checks: list[DataCheck], budget: int, mandatory: set[str] | None) -> tuple[list[DataCheck], dict[str, int]]:
    """The checks that run and each one's budget: all at ``budget``; with ``budget`` 0, only the ones the
    upgrade crosses (mandatory), at ``MANDATORY_BUDGET`` (all of them when crossing is not measured)."""
    if budget > 0:
        return checks, {dc.contract_id: budget for dc in checks}
    chosen = [dc for dc in checks if mandatory is None or dc.contract_id in mandatory]
    return chosen, {dc.contract_id: MANDATORY_BUDGET for dc in chosen}
