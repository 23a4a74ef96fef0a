"""Functions ``benchmarks/query_health.py`` runs INSIDE a release's worker (``Release.run``).

Imported by the release's own interpreter: the standard library, numpy and
chromadb only. Each function takes the release's real client as first argument.
"""

from __future__ import annotations

K = 10


def vectors(kind: str, n: int, dim: int, seed: int):
    """``random``: uniform-ish random (standard normal) vectors, the worst case for HNSW; ``random<D>``: random in a
    D-dimensional subspace; ``clustered<D>``: 40 clusters in a D-dimensional latent space, lifted, noised and
    normalised, shaped like sentence embeddings."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.standard_normal((n, dim)).astype(np.float32)
    if kind.startswith("random"):
        d = int(kind[6:])
        return (rng.standard_normal((n, d)) @ rng.standard_normal((d, dim))).astype(np.float32)
    latent = int(kind[9:] or 48)
    centers = rng.standard_normal((40, latent))
    z = centers[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, latent))
    x = z @ (rng.standard_normal((latent, dim)) / np.sqrt(latent)) + 0.15 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write(client, name: str, kind: str, space: str, n: int, dim: int, seed: int = 0, m: int = 16) -> int:
    metadata = {"hnsw:space": space}
    if m != 16:
        metadata["hnsw:M"] = m
    col = client.create_collection(name, metadata=metadata, embedding_function=None)
    x = vectors(kind, n, dim, seed)
    for lo in range(0, n, 1000):
        col.add(ids=[f"r{i}" for i in range(lo, min(n, lo + 1000))], embeddings=x[lo : lo + 1000].tolist())
    return col.count()


def _exact(mat, q, space: str):
    import numpy as np

    if space == "cosine":
        norms = np.linalg.norm(mat, axis=1) * np.linalg.norm(q)
        return 1.0 - (mat @ q) / np.where(norms == 0, 1.0, norms)
    diff = mat - q
    return np.einsum("ij,ij->i", diff, diff)


def measure(client, name: str, queries: int, deep: int, seed: int = 1) -> dict:
    """Stored vectors as queries: recall@10 against brute force, self-hit at 10, and lost (still not found at
    ``deep``); with each query's 20 exact neighbour distances, for the host to estimate the intrinsic dimension."""
    import numpy as np

    col = client.get_collection(name, embedding_function=None)
    space = (col.metadata or {}).get("hnsw:space", "l2")
    n = col.count()
    ids, blocks = [], []
    for lo in range(0, n, 5000):
        got = col.get(limit=5000, offset=lo, include=["embeddings"])
        ids += list(got["ids"])
        blocks.append(np.asarray(got["embeddings"], dtype=np.float32))
    mat = np.concatenate(blocks).astype(np.float64)
    picked = np.random.default_rng(seed).choice(n, size=min(queries, n), replace=False)
    q = mat[picked]
    answer = col.query(query_embeddings=q.astype(np.float32).tolist(), n_results=K, include=["distances"])
    recalls, missed, neighbours = [], [], []
    for j, row in enumerate(picked):
        d = _exact(mat, q[j], space)
        order = np.argsort(d, kind="stable")[:20]
        neighbours.append([[ids[i] for i in order], d[order].tolist()])
        kth = d[order[K - 1]]
        recalls.append(sum(1 for r in answer["ids"][j] if d[ids.index(r)] <= kth + 1e-4 + 1e-3 * kth) / K)
        if ids[row] not in answer["ids"][j] and min(answer["distances"][j]) > 1e-4:
            missed.append(j)
    lost, error = [], None
    wide = min(deep, max(K, n // 4))
    if missed:
        try:
            again = col.query(
                query_embeddings=q[missed].astype(np.float32).tolist(), n_results=wide, include=["distances"]
            )
            lost = [
                j
                for jj, j in enumerate(missed)
                if ids[picked[j]] not in again["ids"][jj] and min(again["distances"][jj]) > 1e-4
            ]
        except Exception as exc:  # noqa: BLE001 - 0.x: fewer records reachable than asked for
            error, lost = str(exc).splitlines()[0][:120], missed
    return {
        "n": n,
        "space": space,
        "recall": float(np.mean(recalls)),
        "self_hit": 1 - len(missed) / len(picked),
        "lost": len(lost),
        "queries": len(picked),
        "deep": wide,
        "deep_error": error,
        "query_ids": [ids[i] for i in picked],
        "neighbours": neighbours,
    }
