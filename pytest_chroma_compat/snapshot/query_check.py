"""The ``query`` check of ``validate``: nearest neighbours of stored vectors, each release judged against the data.

Both releases read the same index files (1.x opens a 0.6 store's HNSW segment as
it is), so an index damaged in the store loses the same neighbours on both sides
and a check that only compares the releases calls it safe. So each release's
answers are also judged against the data itself: the exact neighbours computed
from the source's vectors, and one fact a healthy index keeps, whatever its
approximation: a stored vector, queried, finds its own record. A record the
index can never return (its graph links gone) is missing from its own query
however wide the search; an approximate index only misses it at a small
``n_results`` (0.4's ``search_ef`` is 10).

Why not a recall floor or "every stored vector finds itself": HNSW is
approximate, and how approximate depends on the data and the index parameters.
Measured on healthy stores written by 0.4.24, 0.6.3, 1.0.21 and 1.5.9 (384-d,
queries are stored vectors, default parameters): clustered vectors shaped like
sentence embeddings lose no record, but uniform random vectors, the worst case,
lose 1-2% of their records at 10k and 13-16% at 100k even at ``n_results=1000``
(and recall@10 falls to 0.54 on 0.4.24). A lost record is a defect only where
a healthy index loses none: vectors of low intrinsic dimension (estimated from
the exact neighbour distances, ``intrinsic_dimension``) and default-or-stronger
index parameters. Elsewhere the releases are only compared with each other, and
the check says why. ``benchmarks/query_health.py`` re-measures these numbers.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.engine.worker.fingerprint import float32_rows
from pytest_chroma_compat.roundtrip.invariants import DISTANCE_ATOL, DISTANCE_RTOL, RECALL
from pytest_chroma_compat.roundtrip.model import distances
from pytest_chroma_compat.snapshot.result import Check

#: stored vectors queried per collection: enough that a damaged index (a fifth of its records unreachable)
#: is found with probability 0.98, few enough that computing their exact neighbours costs ~10 ms a page
QUERIES = 50
K = 10
#: exact neighbours kept per query: the first K grade recall, all of them measure the data's intrinsic dimension
NEIGHBOURS = 20
#: n_results of the second, deep search for the queries that did not find themselves: hnswlib searches with
#: ef = max(search_ef, n_results), so a record still missing then is one the index cannot reach. A quarter of
#: the collection at most: 0.x raises when asked for more records than it can reach (1.x returns fewer)
DEEP = 1000
#: the recall the target may lose against the source before the upgrade is blamed
RECALL_DROP = 0.1
#: a distance at most this is "the same vector" (the record itself, or a duplicate of it)
ZERO = DISTANCE_ATOL

#: Where a lost record is a defect of the index: measured lost rates (records not returned for their own
#: vector at n_results=1000, 500-1000 queries) of healthy default-parameter 384-d indexes, by intrinsic
#: dimension (this module's estimator), at 10k / 100k records: 12-36 (clustered, or random in 16-64
#: dimensions): 0 / 0.1% (clustered, 30) and 0.6% (random 64-d, 38); 46-55 (random 128-d): 0 / 2.2%;
#: 102-117 (random 384-d): 1-2% / 13-16%. Weaker parameters lose more at the same dimension (random 64-d,
#: 10k: M=8 1.8%, M=4 15%, construction_ef=10 2.2%). So: judged up to dimension 40 with at least the default
#: M and construction_ef, a healthy index assumed to lose at most 1% there (above the 0.6% measured), and
#: the number of lost records allowed is the binomial tail of that rate at ALPHA (4 of 50).
LID_MAX = 40.0
HEALTHY_LOST_RATE = 0.01
ALPHA = 1e-3
#: the parameters every release defaults to, as (metadata key, configuration keys); a weaker index is not judged
INDEX_DEFAULTS = {
    "M": ("hnsw:M", ("max_neighbors", "M"), 16),
    "construction_ef": ("hnsw:construction_ef", ("ef_construction", "construction_ef"), 100),
}


@dataclass
class Queries:
    """Sample query vectors and the exact nearest neighbours over everything read so far."""

    ids: list[str]
    vectors: np.ndarray  # (q, d) float64
    space: str
    best_d: list[np.ndarray] = field(default_factory=list)
    best_ids: list[list[str]] = field(default_factory=list)
    best_at: list[np.ndarray] = field(default_factory=list)  # (page, row) of each, for ties

    def __post_init__(self) -> None:
        self.best_d = [np.zeros(0) for _ in self.ids]
        self.best_ids = [[] for _ in self.ids]
        self.best_at = [np.zeros((0, 2), dtype=np.int64) for _ in self.ids]

    def merge(self, nearest: list, page: int = 0, ids: list[str] | None = None) -> None:
        """Fold in one page's nearest records per query (``fingerprint.nearest``: the page's ``ids`` in the
        order read, ``page`` its place in the stream). Ties go to the earlier page, then the earlier row,
        whatever order pages are folded in (``compare`` folds a page that differed after the stream)."""
        rows = {rid: r for r, rid in enumerate(ids)} if ids is not None else None
        for j, (got, dists) in enumerate(nearest[: len(self.ids)]):
            d = np.concatenate([self.best_d[j], np.asarray(dists, dtype=np.float64)])
            names = self.best_ids[j] + list(got)
            at = np.array(
                [(page, rows[i] if rows is not None else r) for r, i in enumerate(got)], dtype=np.int64
            ).reshape(-1, 2)
            at = np.concatenate([self.best_at[j], at])
            keep = np.lexsort((at[:, 1], at[:, 0], d))[:NEIGHBOURS]
            self.best_d[j], self.best_ids[j], self.best_at[j] = d[keep], [names[i] for i in keep], at[keep]

    def same_vector(self, j: int) -> set[str]:
        """The query's own record and its exact duplicates: any of them returned means it found itself."""
        return {self.ids[j]} | {i for i, d in zip(self.best_ids[j], self.best_d[j]) if d <= ZERO}


def sample(col: Collection, first_ids: list[str], space: str, seed: int) -> Queries:
    """Stored vectors of records drawn from the first chunk of ids: each must find itself and
    its true neighbours among every record. One call by id: a ``get`` at a random offset
    scans every record before it (seconds each on a million-record 1.5.9 store)."""
    rng = np.random.default_rng(seed)
    picked = (
        sorted(rng.choice(len(first_ids), size=min(QUERIES, len(first_ids)), replace=False).tolist())
        if first_ids
        else []
    )
    ids, vecs = [], []
    if picked:
        got = col.get(ids=[first_ids[i] for i in picked], include=["embeddings"])
        rows = float32_rows(got.get("embeddings"), len(got["ids"]))
        if rows is not None and rows.shape[1]:
            ids, vecs = list(got["ids"]), list(rows.astype(np.float64))
    width = len(vecs[0]) if vecs else 0
    return Queries(ids, np.stack(vecs) if vecs else np.zeros((0, width)), space)


def intrinsic_dimension(queries: Queries) -> float | None:
    """The data's local intrinsic dimension around the queries (Levina-Bickel maximum likelihood, pooled).

    From the exact neighbour distances the source computed, the records themselves
    and duplicates left out. Why it matters: HNSW degrades with it (random 384-d
    vectors estimate 102-117 and lose up to 16% of their records; clustered ones
    shaped like sentence embeddings 12-36 and lose none). None when it cannot be
    estimated: an ``ip`` space (not a metric), or fewer than 3 distinct neighbours.
    """
    if queries.space not in ("l2", "cosine"):
        return None
    inverse = []
    for j, rid in enumerate(queries.ids):
        d = np.asarray([x for i, x in zip(queries.best_ids[j], queries.best_d[j]) if i != rid and x > ZERO])
        if len(d) < 3:
            continue
        r = np.sqrt(d)  # squared L2 and 1 - cosine are both squared distances (up to a factor)
        inverse.append(float(np.mean(np.log(r[-1] / r[:-1]))))
    if not inverse:
        return None
    mean = float(np.mean(inverse))
    return math.inf if mean <= 0 else 1.0 / mean


def allowed_lost(queries: int, rate: float = HEALTHY_LOST_RATE, alpha: float = ALPHA) -> int:
    """The most lost records a healthy index shows among ``queries`` (binomial tail below ``alpha``)."""
    tail = 1.0
    for lost in range(queries + 1):
        tail -= math.comb(queries, lost) * rate**lost * (1 - rate) ** (queries - lost)
        if tail < alpha:
            return lost
    return queries


def index_parameters(metadata: dict | None, config: Any = None) -> dict[str, int]:
    """M and construction_ef as the collection records them: 0.x metadata, 1.x configuration JSON.

    The weakest value either names: 0.5-0.6 write the defaults into the configuration JSON
    while building the index with the ``hnsw:`` metadata's values.
    """

    def number(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    sections = [v for k, v in config.items() if "hnsw" in k and isinstance(v, dict)] if isinstance(config, dict) else []
    out = {}
    for name, (meta_key, config_keys, default) in INDEX_DEFAULTS.items():
        named = [(metadata or {}).get(meta_key)] + [section.get(k) for section in sections for k in config_keys]
        out[name] = min((v for v in named if number(v)), default=default)
    return out


def judgeable(queries: Queries, params: dict[str, int]) -> tuple[float | None, str | None]:
    """The intrinsic dimension, and why lost records cannot be called a defect here (None: they can)."""
    if queries.space not in ("l2", "cosine"):
        return None, f"in the {queries.space} space a stored vector is not its own nearest neighbour"
    weak = [
        f"{name} {params[name]} < {default}"
        for name, (_, _, default) in INDEX_DEFAULTS.items()
        if params[name] < default
    ]
    if weak:
        return (
            intrinsic_dimension(queries),
            f"the index is built weaker than the defaults ({', '.join(weak)}), "
            "and a healthy weak index loses records (M=4: 15% of random 64-d ones)",
        )
    lid = intrinsic_dimension(queries)
    if lid is None:
        return None, "too few distinct neighbours to measure the data's intrinsic dimension"
    if lid > LID_MAX:
        return lid, (
            f"the vectors' intrinsic dimension is ~{lid:.0f} (above {LID_MAX:.0f}), where a healthy HNSW "
            "index cannot return some of its records (measured: 13-16% of random 384-d ones at 100k)"
        )
    return lid, None


# -- each release's answers ----------------------------------------------------------------------------


@dataclass
class Side:
    """One release's answers to the sample queries, graded against the exact neighbours."""

    recall: float = 1.0
    wrong: list = field(default_factory=list)  # distances that differ from the exact ones
    error: str | None = None  # every query raised (or the worker failed): nothing to grade
    raised: list[int] = field(default_factory=list)  # queries that raised when asked one by one
    raised_error: str | None = None  # the first of their errors
    missed: list[int] = field(default_factory=list)  # queries whose own record is not in the k answer
    lost: list[int] = field(default_factory=list)  # ... nor in the deep one
    deep_error: str | None = None


def _err(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split())[:300] if text else type(exc).__name__


def _answer(col: Collection, vectors: np.ndarray, k: int) -> list | str:
    """Each query's ``(ids, distances)``, or its error as a string; one string when every query raised.

    Why one by one after a refusal: 0.x answers a batch of queries or raises for all
    of them ("Cannot return the results in a contigious 2D array" when one vector
    cannot reach ``k`` records), where 1.x answers each with fewer records. Asked
    one at a time, both releases are graded on the same queries.
    """

    def ask(rows: np.ndarray) -> list:
        got = col.query(query_embeddings=rows.astype(np.float32), n_results=k, include=["distances"])
        return [(list(ids), [float(d) for d in dists]) for ids, dists in zip(got["ids"], got["distances"])]

    try:
        return ask(vectors)
    except WorkerError as exc:  # the worker died or timed out: no point asking it again
        return f"error: {_err(exc)}"
    except ChromaError as exc:
        first = f"error: {_err(exc)}"
    out: list = []
    for row in vectors:
        try:
            out.extend(ask(row[None, :]))
        except WorkerError as exc:
            return f"error: {_err(exc)}"
        except ChromaError as exc:
            out.append(f"error: {_err(exc)}")
    return first if all(isinstance(x, str) for x in out) else out


def _found_itself(queries: Queries, j: int, ids: list, dists: list) -> bool:
    """Its own record or a duplicate; or any record at distance ~0 (more duplicates than NEIGHBOURS holds)."""
    return bool(queries.same_vector(j) & set(ids)) or any(d <= ZERO for d in dists)


def grade(answer: list | str, queries: Queries, exact: dict, k: int) -> Side:
    """Mean recall against the exact neighbours, distances that are simply wrong, queries that missed themselves."""
    n = len(queries.ids)
    if isinstance(answer, str):
        return Side(recall=0.0, error=answer, missed=list(range(n)), lost=list(range(n)))
    side, recalls = Side(), []
    for j, got in enumerate(answer):
        if isinstance(got, str):
            side.raised.append(j)
            side.raised_error = side.raised_error or got
            side.missed.append(j)
            recalls.append(0.0)
            continue
        ids, dists = got
        truth = queries.best_d[j][:k]
        kth = float(truth[-1]) if len(truth) else 0.0
        tol = DISTANCE_ATOL + DISTANCE_RTOL * abs(kth)
        hits = sum(1 for i in ids if (j, i) in exact and exact[(j, i)] <= kth + tol)
        recalls.append(hits / max(min(k, len(queries.best_ids[j])), 1))
        for i, d in zip(ids, dists):
            e = exact.get((j, i))
            if e is None or abs(d - e) > DISTANCE_ATOL + DISTANCE_RTOL * abs(e):
                side.wrong.append({"query": queries.ids[j], "id": i, "distance": d, "exact": e})
        if not _found_itself(queries, j, ids, dists):
            side.missed.append(j)
    side.recall = float(np.mean(recalls)) if recalls else 1.0
    return side


def search_deeper(col: Collection, queries: Queries, side: Side, n_results: int) -> None:
    """Ask again, wide, for the queries that missed themselves: what is still missing, the index cannot reach.

    A query that raises even then (0.x: fewer than ``n_results`` records reachable)
    has lost its record too.
    """
    if side.error is not None or not side.missed:
        return
    answer = _answer(col, queries.vectors[side.missed], n_results)
    if isinstance(answer, str):
        side.deep_error, side.lost = answer, list(side.missed)
        return
    side.lost = []
    for j, got in zip(side.missed, answer):
        if isinstance(got, str):
            side.deep_error = side.deep_error or got
            side.lost.append(j)
        elif not _found_itself(queries, j, *got):
            side.lost.append(j)


def _exact(src: Collection, queries: Queries, answers: tuple) -> dict:
    """Exact distances from every query to every record either release returned, from the source's vectors."""
    returned = {
        i for ans in answers if not isinstance(ans, str) for got in ans if not isinstance(got, str) for i in got[0]
    }
    exact: dict = {}
    if returned:
        got = src.get(ids=sorted(returned), include=["embeddings"])
        mat = np.asarray(got["embeddings"], dtype=np.float32).astype(np.float64)
        for j, q in enumerate(queries.vectors):
            for i, d in zip(got["ids"], distances(mat, q, queries.space)):
                exact[(j, i)] = float(d)
    return exact


# -- the verdict ---------------------------------------------------------------------------------------


def defects(side: Side, judged: bool, allowed: int, n: int, deep: int) -> list[str]:
    """What is wrong with one release's answers, against the data."""
    out = []
    if side.error is not None:
        out.append(side.error)
    if side.raised:
        out.append(f"{len(side.raised)} of {n} queries raised ({side.raised_error})")
    if side.wrong:
        out.append(f"{len(side.wrong)} distance(s) differ from the exact ones")
    if judged and side.error is None and len(side.lost) > allowed:
        out.append(
            f"{len(side.lost)} of {n} stored vectors are never returned, not even for their own vector at "
            f"n_results={deep}"
        )
    return out


def verdict(s: Side, t: Side, judged: bool, allowed: int, n: int, deep: int) -> tuple[str, str | None]:
    """``pass``, ``pre-existing`` (the source release answers as badly: the index was damaged before the upgrade)
    or ``fail``, and why. Each release is judged against the data; then the target is compared with the source
    only where the source answered (a source that raised cannot be out-answered)."""
    t_bad, s_bad = defects(t, judged, allowed, n, deep), defects(s, judged, allowed, n, deep)
    answered = s.error is None
    dropped = answered and t.recall < RECALL and t.recall < s.recall - RECALL_DROP
    if not t_bad and not dropped:
        return "pass", None
    if not t_bad:
        return "fail", f"recall dropped from {s.recall:.2f} to {t.recall:.2f}"
    worse = (
        (t.error is not None and answered)
        or (answered and len(t.raised) > len(s.raised))
        or dropped
        or (answered and bool(t.wrong) and not s.wrong)
        or (judged and len(t.lost) > len(s.lost) + allowed)
    )
    if s_bad and not worse:
        return "pre-existing", "; ".join(t_bad)
    return "fail", "; ".join(t_bad)


def query_check(
    name: str, src: Collection, tgt: Collection, queries: Queries, *, params: dict[str, int], count: int
) -> Check:
    """Both releases answer the sample queries; each answer is graded against the data, then they are compared.

    ``params``: the index's M and construction_ef (``index_parameters``); ``count``: records in the collection.
    """
    started = time.monotonic()
    if not queries.ids:
        return Check("query", "skip", "no stored vectors to query with", name)
    k = min(K, max(len(b) for b in queries.best_ids))
    with ThreadPoolExecutor(2, thread_name_prefix="queries") as pool:  # two workers: ask both at once
        s_ans, t_ans = pool.map(lambda col: _answer(col, queries.vectors, k), (src, tgt))
    exact = _exact(src, queries, (s_ans, t_ans))
    s, t = grade(s_ans, queries, exact, k), grade(t_ans, queries, exact, k)
    deep = min(DEEP, max(k, count // 4))
    with ThreadPoolExecutor(2, thread_name_prefix="queries") as pool:
        list(pool.map(lambda pair: search_deeper(pair[0], queries, pair[1], deep), ((src, s), (tgt, t))))
    lid, why_not = judgeable(queries, params)
    n, allowed = len(queries.ids), allowed_lost(len(queries.ids))
    status, why = verdict(s, t, why_not is None, allowed, n, deep)
    versions = src.client.release.version, tgt.client.release.version
    evidence = {
        "k": k,
        "space": queries.space,
        "queries": n,
        "source recall": round(s.recall, 3),
        "target recall": round(t.recall, 3),
        "source self-hit": round(1 - len(s.missed) / n, 3),
        "target self-hit": round(1 - len(t.missed) / n, 3),
        "deep n_results": deep,
        "source lost": len(s.lost),
        "target lost": len(t.lost),
        "lost allowed": allowed,
        "intrinsic dimension": round(lid, 1) if lid is not None and math.isfinite(lid) else None,
        "index parameters": params,
        "judged against the data": why_not is None,
        "query ids": queries.ids,
    }
    if why_not:
        evidence["not judged against the data"] = why_not
    for label, side in (("source", s), ("target", t)):
        if side.lost:
            evidence[f"{label} lost ids"] = [queries.ids[j] for j in side.lost[:5]]
        if status != "pass":
            evidence.update(
                {
                    f"{label} error": side.error,
                    f"{label} queries raised": len(side.raised),
                    f"{label} raised": side.raised_error,
                    f"{label} wrong distances": side.wrong[:5],
                    f"{label} deep error": side.deep_error,
                }
            )
    detail = (
        f"{n} stored vector(s) queried at k={k}: recall {t.recall:.2f} (source {s.recall:.2f}), "
        f"{n - len(t.missed)}/{n} find themselves (source {n - len(s.missed)}/{n}), "
        f"{len(t.lost)} never returned at n_results={deep} (source {len(s.lost)})"
    )
    seconds = time.monotonic() - started
    if status == "pass":
        judged = (
            f"judged against the data (intrinsic dimension ~{lid:.0f}, at most {allowed} lost allowed)"
            if why_not is None
            else f"compared between releases only: {why_not}"
        )
        s_bad = defects(s, why_not is None, allowed, n, deep)
        if s_bad:  # e.g. export-import rebuilt a damaged index: the upgrade leaves the defect behind
            judged += f"; chromadb {versions[0]} (source) answers worse: {'; '.join(s_bad)}"
        return Check("query", "pass", f"{detail}; {judged}", name, evidence, seconds)
    if status == "pre-existing":
        return Check(
            "query",
            "pre-existing",
            (
                f"{detail}; the store's vector index answers wrongly on both releases ({versions[0]}, {versions[1]}): "
                f"{why}"
                + (
                    f"; a healthy index loses at most {allowed} of {n} at this intrinsic dimension (~{lid:.0f})"
                    if why_not is None and lid is not None and len(t.lost) > allowed
                    else ""
                )
            ),
            name,
            evidence,
            seconds,
        )
    return Check("query", "fail", f"{detail}; {why}", name, evidence, seconds)
