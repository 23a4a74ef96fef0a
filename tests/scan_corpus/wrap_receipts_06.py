# scan: 0.6.3 -> 1.5.9
"""A receipt-processing service's index (application-shaped): the client and the collection live
in properties, a private query helper hands `where=` on, callers pass literal filters to it."""
import os
from typing import Any, Optional

import chromadb


class ReceiptIndex:
    def __init__(self, collection_name: str = "receipts") -> None:
        self._name = collection_name

    @property
    def client(self) -> Any:
        return chromadb.HttpClient(host=os.environ.get("CHROMA_HOST", "localhost"), port=8000)

    @property
    def collection(self) -> Any:
        return self.client.get_or_create_collection(self._name, embedding_function=None)

    def ensure(self) -> None:
        if "receipts-archive" not in self.client.list_collections():  # expect: list-collections-objects
            self.client.create_collection("receipts-archive", embedding_function=None)

    def _search(self, vector: list, where: Optional[dict] = None, k: int = 5) -> Any:
        return self.collection.query(query_embeddings=[vector], n_results=k, where=where)

    def by_label(self, vector: list, label: str) -> Any:
        return self._search(vector, where={"label": {"$contains": label}})  # expect: where-contains-metadata

    def by_label_positional(self, vector: list, label: str) -> Any:
        return self._search(vector, {"label": {"$contains": label}}, 3)  # expect: where-contains-metadata

    def by_label_in_store(self, vector: list, label: str, store: str) -> Any:
        flt = {"$and": [{"store": store}, {"label": {"$contains": label}}]}  # expect: where-contains-metadata
        return self._search(vector, where=flt)

    def by_store(self, vector: list, store: str) -> Any:
        return self._search(vector, where={"store": {"$eq": store}})  # expect-not: where-contains-metadata

    def by_text(self, text: str) -> Any:
        return self.collection.get(where_document={"$contains": text})  # expect-not: where-contains-metadata

    def recent(self, limit: int = 50, offset: int = 0) -> Any:
        kwargs = {"where": {"year": {"$gte": 2024}}, "include": ["metadatas"]}
        kwargs["limit"] = limit
        return self.collection.get(**kwargs, offset=offset)  # expect-not: get-order-internal-ids  (same order since 0.5.9)


class Admin:
    """Two methods bind `name`: one from list_collections(), one a parameter (only the first is a listing)."""

    def __init__(self, client: chromadb.ClientAPI) -> None:
        self._client = client

    def drop_all(self) -> None:
        for name in self._client.list_collections():
            self._client.delete_collection(name)  # expect: list-collections-objects

    def drop(self, name: str) -> None:
        self._client.delete_collection(name)  # expect-not: list-collections-objects

    def describe(self, name: str) -> Any:
        return self._client.get_collection(name).metadata  # expect-not: list-collections-objects
