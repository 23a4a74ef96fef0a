# scan: 0.6.3 -> 1.5.9
"""Written for 0.6, where list_collections() gave names."""
import chromadb

client = chromadb.PersistentClient(path="./store")
for name in client.list_collections():
    col = client.get_collection(name)  # expect: list-collections-objects
    print(col.count())
if "docs" in client.list_collections():  # expect: list-collections-objects
    client.delete_collection("docs")
client.get_collection("archive")  # expect-not: list-collections-objects
names = [c.name for c in client.list_collections()]  # expect-not: list-collections-names
