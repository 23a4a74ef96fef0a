# scan: 0.4.24 -> 1.5.9
"""A retrieval step of a RAG app that reuses stored embeddings."""
import json

import chromadb

client = chromadb.PersistentClient(path="./rag")
kb = client.get_or_create_collection("kb", embedding_function=None)  # expect-not: get-or-create-ignores-metadata


def retrieve(vector: list) -> dict:
    results = kb.query(query_embeddings=[vector], n_results=3, include=["documents", "embeddings"])
    if results["embeddings"]:  # expect: embeddings-numpy
        vectors = results["embeddings"][0]
    vectors = results["embeddings"] or []  # expect: embeddings-numpy
    count = len(results["embeddings"])  # expect-not: embeddings-numpy
    if results["documents"]:  # expect-not: embeddings-numpy
        print(results["documents"][0])
    if results.get("embeddings") is not None:  # expect-not: embeddings-numpy
        print(count, vectors)
    stored = kb.get(include=["embeddings"])
    if not stored.get("embeddings"):  # expect: embeddings-numpy
        return {}
    return json.loads(json.dumps(results["documents"]))
