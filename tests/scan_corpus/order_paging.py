# scan: 0.4.19 -> 1.5.9
"""get() order changed at 0.4.20 and back at 0.5.9 (measured): from 0.4.19 to 1.5.9 it is the same."""
import chromadb

client = chromadb.EphemeralClient()
col = client.create_collection("pages", embedding_function=None)
second_page = col.get(limit=2, offset=2)  # expect-not: get-order-internal-ids
