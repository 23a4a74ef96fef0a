# scan: 1.0.21 -> 1.5.9
"""The same receipt service on 1.0: a repository function takes `where` and forwards it through
**kwargs; a string label filtered with $contains raises before 1.5 and matches nothing after."""
from typing import Any, Optional

import chromadb

_client = chromadb.PersistentClient(path="./receipts-db")


def receipts():
    return _client.get_or_create_collection("receipts", embedding_function=None)


def find(where: Optional[dict] = None, limit: Optional[int] = None, **options: Any) -> Any:
    return receipts().get(where=where, limit=limit, **options)


def query(vector: list, **filters: Any) -> Any:
    return receipts().query(query_embeddings=[vector], n_results=5, **filters)


def groceries() -> Any:
    return find(where={"$and": [{"label": {"$contains": "grocery"}}, {"total": {"$gt": 0}}]})  # expect: where-contains-metadata


def not_groceries() -> Any:
    return find(where={"label": {"$not_contains": "grocery"}})  # expect: where-contains-metadata


def nearest(vector: list, label: str) -> Any:
    return query(vector, where={"label": {"$contains": label}})  # expect: where-contains-metadata


def by_merchant(merchant: str) -> Any:
    return find(where={"$and": [{"merchant": merchant}, {"total": {"$gt": 0}}]})  # expect-not: where-contains-metadata


def text(needle: str) -> Any:
    return query([0.0], where_document={"$contains": needle})  # expect-not: where-contains-metadata


def page(n: int) -> Any:
    return find(limit=20, offset=20 * n)  # expect-not: get-order-internal-ids
