# scan: 0.6.3 -> 1.5.9
"""A module handed a chromadb client by its constructor, without importing chromadb (the app's
composition root builds the client): get_or_create_collection(embedding_function=) says what it is."""
from typing import Any, Optional


class LabelRepository:
    def __init__(self, client, collection_name: str = "labels") -> None:
        self._client = client
        self._name = collection_name

    def _collection(self) -> Any:
        return self._client.get_or_create_collection(self._name, embedding_function=None)

    def rotate(self) -> None:
        if "labels-old" in self._client.list_collections():  # expect: list-collections-objects
            self._client.delete_collection("labels-old")
        for name in self._client.list_collections():
            print(self._client.get_collection(name).count())  # expect: list-collections-objects

    def _get(self, where: Optional[dict] = None) -> Any:
        return self._collection().get(where=where, include=["metadatas"])

    def food(self) -> Any:
        return self._get(where={"label": {"$contains": "food"}})  # expect: where-contains-metadata

    def food_in(self, store: str) -> Any:
        return self._get({"$and": [{"label": {"$contains": "food"}}, {"store": store}]})  # expect: where-contains-metadata

    def exact(self, label: str) -> Any:
        return self._get(where={"label": label})  # expect-not: where-contains-metadata


class ItemCache:
    """Handed a collection: its query(query_embeddings=...) is chromadb's signature."""

    def __init__(self, items) -> None:
        self._items = items

    def similar(self, vector: list) -> Any:
        return self._items.query(query_embeddings=[vector], n_results=3,
                                 where={"tags": {"$contains": "x"}})  # expect: where-contains-metadata
