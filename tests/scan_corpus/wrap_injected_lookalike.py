# scan: 0.6.3 -> 1.5.9
"""Look-alikes: objects handed to constructors whose methods share chromadb's names (pymongo's
Database has list_collections / get_collection / create_collection; a cache has get(where=...)).
No chromadb import and no chromadb-only method on them: none of this is chromadb."""
from typing import Any


class AuditStore:
    def __init__(self, db) -> None:
        self._db = db

    def setup(self) -> None:
        if "audit" not in self._db.list_collections():  # expect-not: list-collections-objects
            self._db.create_collection("audit")
        for name in self._db.list_collections():
            print(self._db.get_collection(name).estimated_document_count())  # expect-not: list-collections-objects

    def _find(self, where: dict) -> Any:
        return self._db.get_collection("audit").find(where)


class Lookup:
    def __init__(self, cache) -> None:
        self._cache = cache

    def _get(self, where=None, limit=None) -> Any:
        return self._cache.get(where=where, limit=limit)

    def tagged(self) -> Any:
        return self._get(where={"tags": {"$contains": "x"}}, limit=5)  # expect-not: where-contains-metadata
