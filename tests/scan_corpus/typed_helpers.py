# scan: 0.5.16 -> 0.5.17
"""Helpers that take chromadb objects as typed parameters (and a factory)."""
from chromadb import Collection, PersistentClient


def open_store(path: str):
    return PersistentClient(path=path)


def clear(collection: Collection) -> None:
    ids = collection.get(where={})["ids"]  # expect: empty-filters-rejected
    collection.delete(ids=ids)  # expect-not: empty-filters-rejected


def search(collection: "Collection", vector: list):
    return collection.query(query_embeddings=[vector], where_document={})  # expect: empty-filters-rejected


store = open_store("./x")
store.persist()  # expect-not: persist-removed
