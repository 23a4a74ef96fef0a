# scan: 0.4.16 -> 0.5.23
"""A 0.4 ingestion job that switched a collection to cosine after the fact (accepted up to 0.4.20,
ValueError from 0.4.21), beside ordinary metadata updates every release takes."""
import chromadb

client = chromadb.PersistentClient(path="./index")
docs = client.get_or_create_collection("docs", embedding_function=None)
docs.modify(metadata={"hnsw:space": "cosine", "owner": "search"})  # expect: modify-hnsw-space
SPACE = {"hnsw:space": "ip"}
docs.modify(metadata=SPACE)  # expect: modify-hnsw-space
docs.modify(metadata={"owner": "search", "version": 2})  # expect-not: modify-hnsw-space
docs.modify(name="docs-v2")  # expect-not: modify-hnsw-space
fresh = client.create_collection("docs-cosine", metadata={"hnsw:space": "cosine"}, embedding_function=None)
fresh.add(ids=["a"], embeddings=[[0.1, 0.2]])


class Settings:
    """Not chromadb's: an app's own settings object with a modify method."""

    def modify(self, metadata):
        return metadata


Settings().modify(metadata={"hnsw:space": "l2"})  # expect-not: modify-hnsw-space
