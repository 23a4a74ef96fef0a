# scan: 0.5.23 -> 0.6.3
"""Admin script that lists collections by name."""
import chromadb

client = chromadb.PersistentClient(path="./store")
names = [c.name for c in client.list_collections()]  # expect: list-collections-names
for col in client.list_collections():
    print(col.name, col.count())  # expect: list-collections-names
first = client.list_collections()[0].metadata  # expect: list-collections-names
total = len(client.list_collections())  # expect-not: list-collections-names
