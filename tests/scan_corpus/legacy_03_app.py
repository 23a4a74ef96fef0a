# scan: 0.3.29 -> 1.5.9
"""An app written against chromadb 0.3 (duckdb+parquet, persist(), texts embedding functions)."""
import chromadb
from chromadb.config import Settings

client = chromadb.Client(Settings(chroma_db_impl="duckdb+parquet",  # expect: new-client-constructors
                                  persist_directory="db"))


class MyEmbeddings:
    def __init__(self, model):
        self.model = model

    def __call__(self, texts):  # expect: embedding-function-input
        return [self.model.encode(t) for t in texts]


class Formatter:
    def format(self, texts):  # expect-not: embedding-function-input
        return "\n".join(texts)


collection = client.get_or_create_collection("notes", embedding_function=MyEmbeddings(None))
collection.add(ids=["1"], documents=["hello"], embeddings=[[0.1, 0.2]])
client.persist()  # expect: persist-removed
limit = client.max_batch_size  # expect-not: max-batch-size-method
