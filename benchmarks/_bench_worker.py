"""Functions ``benchmarks/validate_scale.py`` runs INSIDE a release's worker (``Release.run``).

This file is imported by the release's own interpreter, so it may use only
the standard library, numpy (every release env has it) and chromadb. Each
function takes the release's real chromadb client object as first argument.
"""

from __future__ import annotations

import time

TOPICS = ("apples", "rivers", "engines", "forests", "harbors", "planets", "violins", "glaciers")
KINDS = ("note", "page", "mail", "chat")
INCLUDE = ["embeddings", "documents", "metadatas"]


def _max_batch(client) -> int:
    try:
        return int(client.get_max_batch_size())
    except Exception:  # older releases have no such method (and no such limit below ~5461)
        return 5000


def _records(lo: int, hi: int, dim: int, seed: int):
    """Records lo..hi-1, the same for the same (seed, lo, hi) whatever the chunking before them."""
    import numpy as np

    rng = np.random.default_rng([seed, lo])
    embs = rng.standard_normal((hi - lo, dim), dtype=np.float32)
    scores = rng.random(hi - lo)
    ids = [f"id-{i:09d}" for i in range(lo, hi)]
    docs = [f"record {i} about {TOPICS[i % len(TOPICS)]} and {TOPICS[(i // 7) % len(TOPICS)]}" for i in range(lo, hi)]
    metas = [
        {"group": i % 16, "kind": KINDS[i % len(KINDS)], "score": round(float(s), 6), "even": i % 2 == 0}
        for i, s in zip(range(lo, hi), scores)
    ]
    return ids, embs, docs, metas


def seed(client, name: str, start: int, stop: int, dim: int, seed: int = 0, chunk: int = 5000) -> dict:
    """Add records ``start..stop-1`` to collection ``name`` (created with default settings) in chunks."""
    col = client.get_or_create_collection(name)
    chunk = max(1, min(chunk, _max_batch(client)))
    as_array = True
    started = time.perf_counter()
    for lo in range(start, stop, chunk):
        ids, embs, docs, metas = _records(lo, min(lo + chunk, stop), dim, seed)
        if as_array:
            try:
                col.add(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
                continue
            except (TypeError, ValueError):  # 0.4.x validates embeddings as lists of lists
                as_array = False
        col.add(ids=ids, embeddings=embs.tolist(), documents=docs, metadatas=metas)
    return {"added": stop - start, "seconds": time.perf_counter() - started, "chunk": chunk}


def count(client, name: str) -> int:
    return client.get_collection(name).count()


def _passes(min_seconds: float, one_pass) -> dict:
    """Run ``one_pass`` until ``min_seconds`` have passed; the fastest pass counts (the strictest
    baseline). The first pass is kept too: validate reads each copy once, cold."""
    passes = []
    while not passes or sum(passes) < min_seconds:
        started = time.perf_counter()
        records, pages = one_pass()
        passes.append(time.perf_counter() - started)
    return {
        "records": records,
        "pages": pages,
        "seconds": min(passes),
        "first_seconds": passes[0],
        "passes": len(passes),
    }


def get_loop(client, name: str, batch_size: int, min_seconds: float = 2.0) -> dict:
    """The baseline: a plain paged ``get`` of every record, nothing sent anywhere."""
    col = client.get_collection(name)
    total = col.count()

    def one_pass():
        offset = pages = 0
        while offset < total:
            res = col.get(limit=batch_size, offset=offset, include=INCLUDE)
            n = len(res["ids"])
            if not n:
                break
            offset += n
            pages += 1
        return offset, pages

    return {**_passes(min_seconds, one_pass), "count": total}


def by_id_loop(client, name: str, batch_size: int, chunk_pages: int = 64, min_seconds: float = 2.0) -> dict:
    """The access pattern validate uses, with nothing else: ids in chunks of ``chunk_pages``
    pages (one ``offset`` scan per chunk), then each page by id. Not the target's baseline;
    it shows what validate costs beyond reading the way it reads."""
    col = client.get_collection(name)
    total = col.count()
    chunk = batch_size * chunk_pages

    def one_pass():
        offset = records = pages = 0
        while True:
            ids = col.get(limit=chunk, offset=offset, include=[])["ids"]
            for lo in range(0, len(ids), batch_size):
                records += len(col.get(ids=ids[lo : lo + batch_size], include=INCLUDE)["ids"])
                pages += 1
            offset += len(ids)
            if len(ids) < chunk:
                return records, pages

    return {**_passes(min_seconds, one_pass), "count": total}
