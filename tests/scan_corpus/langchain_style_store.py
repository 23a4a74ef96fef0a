# scan: 0.4.24 -> 1.5.9
"""A vector-store wrapper in the style of an integration package."""
from typing import Any, Optional

import chromadb
from chromadb.api import ClientAPI


class ChromaStore:
    def __init__(self, collection_name: str, client: Optional[ClientAPI] = None,
                 collection_metadata: Optional[dict] = None, persist_directory: Optional[str] = None) -> None:
        self._client = client or chromadb.PersistentClient(path=persist_directory or "./chroma")
        self._collection = self._client.get_or_create_collection(  # expect: get-or-create-ignores-metadata
            name=collection_name,
            embedding_function=None,
            metadata=collection_metadata,
        )

    def add_texts(self, texts: list, embeddings: list, metadatas: Optional[list] = None) -> list:
        ids = [str(i) for i in range(len(texts))]
        self._collection.upsert(ids=ids, embeddings=embeddings, documents=texts, metadatas=metadatas)
        return ids

    def similarity_search(self, embedding: list, k: int = 4, filter: Optional[dict] = None) -> Any:
        return self._collection.query(query_embeddings=[embedding], n_results=k, where=filter)

    def get(self, ids: Optional[list] = None, where: Optional[dict] = None, limit: Optional[int] = None,
            offset: Optional[int] = None) -> Any:
        kwargs = {"ids": ids, "where": where, "limit": limit, "offset": offset}
        return self._collection.get(**kwargs)  # expect: get-order-internal-ids  (limit/offset in the dict)

    def page(self, start: int, size: int) -> Any:
        return self._collection.get(limit=size, offset=start, include=["documents"])  # expect: get-order-internal-ids

    def by_ids(self, ids: list) -> Any:
        return self._collection.get(ids=ids)  # expect-not: get-order-internal-ids

    def delete_collection(self) -> None:
        self._client.delete_collection(self._collection.name)

    def persist(self) -> None:
        """Kept for callers of the old API; the wrapper itself has nothing to flush."""


store = ChromaStore("docs")
store.persist()  # expect-not: persist-removed
