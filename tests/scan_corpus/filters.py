# scan: 0.4.24 -> 1.5.9
"""Queries with literal filters, as a RAG backend writes them."""
import chromadb

client = chromadb.PersistentClient(path="./store")
col = client.get_collection("articles", embedding_function=None)

drafts = col.get(where={"status": {"$ne": "published"}})  # expect: ne-nin-complement
others = col.get(where={"$and": [{"lang": "en"},
                                 {"tag": {"$nin": ["spam", "ads"]}}]})  # expect: ne-nin-complement
kept = col.get(where={"lang": {"$in": ["en", "de"]}})  # expect-not: ne-nin-complement
exact = col.get(where={"lang": {"$eq": "en"}})  # expect-not: ne-nin-complement
tagged = col.get(where={"tags": {"$contains": "python"}})  # expect: where-contains-metadata
no_draft = col.query(query_embeddings=[[0.1, 0.2]], where_document={"$not_contains": "DRAFT"})  # expect: not-contains-complement
found = col.query(query_embeddings=[[0.1, 0.2]], where_document={"$contains": "chroma"})  # expect-not: where-contains-metadata
everything = col.get(where={})  # expect: empty-filters-rejected
none_ids = col.get(ids=[])  # expect: empty-filters-rejected
plain = col.get(where=None)  # expect-not: empty-filters-rejected

RECENT = {"$or": [{"year": {"$gte": 2023}}, {"lang": {"$ne": "fr"}}]}  # expect: ne-nin-complement
recent = col.get(where=RECENT)
