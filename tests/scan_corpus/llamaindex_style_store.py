# scan: 0.5.5 -> 1.5.9
"""A vector store in the style of a framework integration: typed collection, filters built as literals."""
from typing import Any, List, Optional

import chromadb
from chromadb.api.models.Collection import Collection


class ChromaVectorStore:
    def __init__(self, chroma_collection: Collection) -> None:
        self._collection = chroma_collection

    @classmethod
    def from_params(cls, host: str, port: int, collection_name: str, **kwargs: Any) -> "ChromaVectorStore":
        client = chromadb.HttpClient(host=host, port=port)
        return cls(client.get_or_create_collection(collection_name, metadata={"hnsw:space": "ip"}))  # expect: get-or-create-ignores-metadata

    def add(self, ids: List[str], embeddings: List[List[float]], metadatas: List[dict]) -> None:
        clean = [{k: v for k, v in m.items() if v is not None} for m in metadatas]
        self._collection.add(ids=ids, embeddings=embeddings, metadatas=clean)  # expect-not: metadata-value-types

    def delete(self, ref_doc_id: str) -> None:
        self._collection.delete(where={"document_id": ref_doc_id})  # expect-not: empty-filters-rejected

    def delete_all(self) -> None:
        self._collection.delete(where={})  # expect: empty-filters-rejected

    def query(self, embedding: List[float], k: int, doc_ids: Optional[List[str]] = None) -> Any:
        where = {"$and": [{"doc_id": {"$in": doc_ids or []}}, {"deleted": {"$ne": True}}]}  # expect: ne-nin-complement
        results = self._collection.query(query_embeddings=[embedding], n_results=k, where=where)
        if not results["embeddings"]:  # expect: embeddings-numpy
            return []
        return results

    def get_nodes(self, limit: int = 100) -> Any:
        return self._collection.get(limit=limit)  # expect: get-order-internal-ids

    def batch_size(self) -> int:
        client = chromadb.HttpClient()
        return client.max_batch_size  # expect-not: max-batch-size-method  (already gone in 0.5.5: measured)
