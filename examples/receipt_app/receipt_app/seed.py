"""Writes the sample receipts the way the team's production code did.

Runs inside an *old* chromadb release (``chroma_store_from(..., seed=...)``),
with that release's own client: standard library and chromadb only.
"""

WORDS = [
    # (id, text, receipt, line, confidence, is_total, vector)
    ("r1-w1", "COFFEE", "r1", 1, 0.98, False, [0.9, 0.1, 0.0]),
    ("r1-w2", "4.50", "r1", 1, 0.91, False, [0.1, 0.9, 0.0]),
    ("r1-w3", "TOTAL", "r1", 2, 0.99, True, [0.0, 0.2, 0.9]),
    ("r2-w1", "BAGEL", "r2", 1, 0.87, False, [0.8, 0.2, 0.1]),
    ("r2-w2", "TOTAL", "r2", 3, 0.95, True, [0.0, 0.3, 0.8]),
]
LINES = [
    ("r1-l1", "COFFEE 4.50", "r1", 1, [0.7, 0.7, 0.0]),
    ("r1-l2", "TOTAL 4.50", "r1", 2, [0.1, 0.5, 0.8]),
    ("r2-l1", "BAGEL 3.25", "r2", 1, [0.8, 0.3, 0.2]),
]
MERCHANT = {"r1": "Blue Bottle", "r2": "Bagel Barn"}


def seed(client):
    words = client.create_collection("words", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    words.add(
        ids=[w[0] for w in WORDS],
        embeddings=[w[6] for w in WORDS],
        documents=[w[1] for w in WORDS],
        metadatas=[{"receipt": w[2], "line": w[3], "confidence": w[4], "is_total": w[5],
                    "merchant": MERCHANT[w[2]]} for w in WORDS],
    )
    lines = client.create_collection("lines", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    lines.add(
        ids=[ln[0] for ln in LINES],
        embeddings=[ln[4] for ln in LINES],
        documents=[ln[1] for ln in LINES],
        metadatas=[{"receipt": ln[2], "line": ln[3], "merchant": MERCHANT[ln[2]]} for ln in LINES],
    )
    if hasattr(client, "persist"):  # 0.3 wrote to disk only on persist()
        client.persist()
