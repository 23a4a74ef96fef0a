# scan: 0.4.24 -> 1.5.9
"""Paging and deleting through dicts unpacked with ** (the way wrapper libraries build calls)."""
from typing import Any, Optional

import chromadb

client = chromadb.PersistentClient(path="./store")
docs = client.get_collection("docs", embedding_function=None)


def page(start: int, size: int) -> Any:
    kwargs = dict(limit=size, offset=start)
    return docs.get(**kwargs)  # expect: get-order-internal-ids


def page_built(start: int, size: Optional[int] = None) -> Any:
    kwargs: dict = {"include": ["documents"]}
    if size is not None:
        kwargs["offset"] = start
    return docs.get(**kwargs)  # expect: get-order-internal-ids


def by_ids(ids: list) -> Any:
    kwargs = {"ids": ids, "include": ["documents"]}
    return docs.get(**kwargs)  # expect-not: get-order-internal-ids


def wipe() -> None:
    docs.delete(**{"where": {}})  # expect: empty-filters-rejected


def _remove(where: Optional[dict] = None, ids: Optional[list] = None) -> None:
    docs.delete(where=where, ids=ids)


def remove_all() -> None:
    _remove(where={})  # expect: empty-filters-rejected


def remove_drafts() -> None:
    _remove(where={"status": "draft"})  # expect-not: empty-filters-rejected
