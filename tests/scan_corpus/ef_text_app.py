# scan: 0.6.3 -> 1.5.9
"""A knowledge-base app that lets chromadb embed its text: None where it meant "no model yet", then
documents and query texts without vectors (a ValueError up to 1.2, the default ONNX model from 1.3)."""
import chromadb

from kb.models import SentenceEmbedder

client = chromadb.PersistentClient(path="./kb")
notes = client.get_or_create_collection("notes", embedding_function=None)  # expect: embedding-function-none
notes.add(ids=["n1"], documents=["the first note"])
answers = notes.query(query_texts=["note"], n_results=3)

# collections opened with the application's own function: 1.x refuses one of another name
tagged = client.get_collection("tagged", embedding_function=SentenceEmbedder())  # expect: persisted-embedding-function
shared = client.get_or_create_collection(name="shared", embedding_function=SentenceEmbedder())  # expect: persisted-embedding-function
plain = client.get_collection("plain")  # expect-not: persisted-embedding-function
