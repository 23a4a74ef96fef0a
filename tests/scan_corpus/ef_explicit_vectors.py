# scan: 0.6.3 -> 1.5.9
"""Look-alike: embedding_function=None with the application's own vectors on every call, which every
release accepts the same way (the house style of most apps that embed elsewhere)."""
import chromadb

client = chromadb.PersistentClient(path="./vectors")
vecs = client.get_or_create_collection("vecs", embedding_function=None)  # expect-not: embedding-function-none
vecs.add(ids=["a"], embeddings=[[0.1, 0.2]], documents=["text kept beside its vector"])
vecs.upsert(ids=["b"], embeddings=[[0.2, 0.1]], documents=["another"])
hits = vecs.query(query_embeddings=[[0.1, 0.2]], n_results=1)
again = client.get_collection("vecs", embedding_function=None)  # expect-not: persisted-embedding-function
vecs.modify(name="vecs-renamed")  # expect-not: modify-hnsw-space
vecs.modify(metadata={"owner": "search-team"})  # expect-not: modify-hnsw-space


class Index:
    """Another library's objects with the same method names: not chromadb's."""

    def open(self, store):
        return store.get_collection("x", embedding_function=object())  # expect-not: persisted-embedding-function
