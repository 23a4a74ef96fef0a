# scan: 0.4.24 -> 1.5.9
"""A small HTTP service around a local store: a factory, a typed dependency, async handlers."""
import chromadb
from chromadb import Settings


def get_client() -> "chromadb.ClientAPI":
    return chromadb.PersistentClient(path="/data", settings=Settings(anonymized_telemetry=False))  # expect-not: auth-settings-renamed


client = get_client()


def list_names() -> list:
    return [c.name for c in client.list_collections()]  # expect-not: list-collections-names


def search(name: str, vector: list, tag: str) -> dict:
    col = client.get_collection(name)
    got = col.query(query_embeddings=[vector], n_results=5,
                    where={"tags": {"$not_contains": tag}})  # expect: where-contains-metadata
    return {"ids": got["ids"], "has_vectors": bool(got["embeddings"])}  # expect: embeddings-numpy


def tag(name: str, ids: list) -> None:
    col = client.get_collection(name)
    col.update(ids=ids, metadatas=[{"reviewed": True, "reviewer": None} for _ in ids])  # expect: metadata-value-types
    col.upsert(ids=ids, embeddings=[[0.0]] * len(ids), where_document={})  # expect-not: empty-filters-rejected


def export(name: str) -> list:
    col = client.get_collection(name)
    rows = col.get(include=["documents"])  # expect-not: get-order-internal-ids
    return sorted(rows["ids"])
