# scan: 0.3.29 -> 1.5.9
"""Other libraries with the same method names: none of this is chromadb."""
import requests
from pymongo import MongoClient


def run(db, settings: dict, collection) -> None:
    client = MongoClient("mongodb://localhost")
    client.persist()  # expect-not: persist-removed
    db.persist()  # expect-not: persist-removed
    page = collection.get(limit=10, offset=5)  # expect-not: get-order-internal-ids
    if settings["embeddings"]:  # expect-not: embeddings-numpy
        requests.get("https://example.org", params={"limit": 10})
    collection.update(metadata={"k": None})  # expect-not: metadata-value-types
