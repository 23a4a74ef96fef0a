# scan: 0.4.24 -> 1.5.9
"""Ingest in batches of the client's maximum size."""
import chromadb

client = chromadb.HttpClient(host="localhost", port=8000)
docs = client.get_collection("docs", embedding_function=None)


def ingest(rows: list) -> None:
    size = client.max_batch_size  # expect: max-batch-size-method
    size = client.get_max_batch_size()  # expect-not: max-batch-size-method
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        docs.upsert(
            ids=[r["id"] for r in chunk],
            embeddings=[r["vector"] for r in chunk],
            metadatas=[{"source": r["source"], "page": None} for r in chunk],  # expect: metadata-value-types
        )


docs.add(ids=["x"], embeddings=[[0.0, 1.0]], metadatas=[{"author": "me", "year": 2024}])  # expect-not: metadata-value-types
