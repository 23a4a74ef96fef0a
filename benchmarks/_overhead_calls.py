"""The calls ``benchmarks/worker_overhead.py`` times, the same code on both sides.

Imported by the host (driving a ``Release`` proxy client, every call crossing
the worker's pipe) and run as a script by the release environment's own python
(driving chromadb's client in-process). Standard library and numpy only, since
the release's interpreter has nothing of ours installed.

    <env>/bin/python _overhead_calls.py JSON_ARGS   -> prints one JSON line
"""

from __future__ import annotations

import json
import sys
import time

INCLUDE = ["embeddings", "documents", "metadatas"]


def records(n: int, dim: int, seed: int) -> tuple:
    """Seeded records, identical in any process with the same numpy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    embs = rng.standard_normal((n, dim), dtype=np.float32)
    ids = [f"id-{i:07d}" for i in range(n)]
    docs = [f"record {i} in group {i % 16}" for i in range(n)]
    metas = [{"group": i % 16, "even": i % 2 == 0} for i in range(n)]
    return ids, embs, docs, metas


def run_calls(
    client, n: int, dim: int, seed: int, batch: int, queries: int, query_batch: int, name: str = "overhead"
) -> dict:
    """add in batches, get every record back by id, query; seconds per phase (data made beforehand)."""
    ids, embs, docs, metas = records(n, dim, seed)
    col = client.create_collection(name)
    phases = {}
    started = time.perf_counter()
    for lo in range(0, n, batch):
        col.add(
            ids=ids[lo : lo + batch],
            embeddings=embs[lo : lo + batch],
            documents=docs[lo : lo + batch],
            metadatas=metas[lo : lo + batch],
        )
    phases["add"] = {"records": n, "seconds": time.perf_counter() - started}
    started, got = time.perf_counter(), 0
    for lo in range(0, n, batch):
        got += len(col.get(ids=ids[lo : lo + batch], include=INCLUDE)["ids"])
    phases["get"] = {"records": got, "seconds": time.perf_counter() - started}
    started, hits = time.perf_counter(), 0
    for lo in range(0, queries, query_batch):
        res = col.query(query_embeddings=embs[lo : lo + query_batch], n_results=10)
        hits += sum(len(row) for row in res["ids"])
    phases["query"] = {"records": min(queries, n), "results": hits, "seconds": time.perf_counter() - started}
    client.delete_collection(name)
    return phases


def main() -> int:
    import chromadb
    from chromadb.config import Settings

    args = json.loads(sys.argv[1])
    # the worker's ephemeral client has these settings too (engine/worker/adapters.py HERMETIC_SETTINGS)
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False, allow_reset=True))
    client.heartbeat()  # the worker side is timed once its client is open too
    out = {"chromadb": chromadb.__version__, "phases": run_calls(client, **args)}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
