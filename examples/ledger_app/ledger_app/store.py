"""Ledgers in Chroma, the way a team with one store per ledger writes them.

Each ledger is one collection in its own persistent store (``<root>/<name>/``),
so a ledger can be copied, archived or deleted as a directory. Entries carry
long structured ids (``LEDGER#<uuid>#ENTRY#00001``) and vectors computed by the
team's own model (never Chroma's default embedding function), are written in
batches with ``upsert`` (a re-import overwrites), corrected one at a time with
``update``, and read back with ``$and`` filters and L2 nearest-neighbour queries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import chromadb
from chromadb.config import Settings

BATCH_SIZE = 100  # below every release's max batch size, so one call never has to be split by Chroma
SPACE = "l2"
_LEDGER_NAMESPACE = uuid.UUID("6f1b3c36-1d2e-4f6a-9a57-0c1d2e3f4a5b")


@dataclass(frozen=True)
class Entry:
    ledger: str  # the ledger's uuid
    seq: int
    account: str
    side: str  # "debit" | "credit"
    amount_cents: int  # integers: 1.x re-rounds float metadata on write
    posted: int  # yyyymmdd
    memo: str
    vector: tuple[float, ...]

    @property
    def id(self) -> str:
        return entry_id(self.ledger, self.seq)

    def metadata(self) -> dict:
        return {"ledger": self.ledger, "seq": self.seq, "account": self.account, "side": self.side,
                "amount_cents": self.amount_cents, "posted": self.posted}


def entry_id(ledger: str, seq: int) -> str:
    return f"LEDGER#{ledger}#ENTRY#{seq:05d}"


def ledger_uuid(name: str) -> str:
    """A ledger's id follows from its name, so ids can be rebuilt without reading the store."""
    return str(uuid.uuid5(_LEDGER_NAMESPACE, name))


class LedgerNotFound(LookupError):
    pass


def _client(path: Path):
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


class LedgerStore:
    def __init__(self, path: Path, client, collection) -> None:
        self.path = path
        self.client = client
        self.collection = collection
        self.ledger = collection.metadata["ledger"]

    @classmethod
    def create(cls, root: Path, name: str) -> "LedgerStore":
        path = Path(root) / name
        client = _client(path)
        collection = client.create_collection(name, metadata={"hnsw:space": SPACE, "ledger": ledger_uuid(name)},
                                              embedding_function=None)
        return cls(path, client, collection)

    @classmethod
    def open(cls, root: Path, name: str) -> "LedgerStore":
        """An existing ledger, never a new empty one: a mistyped name on a read path must not create a ledger.

        The names are checked with ``list_collections()`` rather than by catching
        ``get_collection``'s error, whose type differs between releases."""
        path = Path(root) / name
        if not path.is_dir():
            raise LedgerNotFound(name)
        client = _client(path)
        if name not in [c.name for c in client.list_collections()]:
            raise LedgerNotFound(name)
        return cls(path, client, client.get_collection(name, embedding_function=None))

    def upsert(self, entries: Iterable[Entry]) -> int:
        """Write entries in batches of BATCH_SIZE; an entry already stored is overwritten. Returns the count."""
        entries = list(entries)
        for start in range(0, len(entries), BATCH_SIZE):
            batch = entries[start:start + BATCH_SIZE]
            self.collection.upsert(
                ids=[e.id for e in batch],
                embeddings=[list(e.vector) for e in batch],
                metadatas=[e.metadata() for e in batch],
                documents=[e.memo for e in batch],
            )
        return len(entries)

    def correct(self, entry: Entry) -> None:
        """A correction to one stored entry (amount, memo, vector): every field is written, so no
        release's metadata merge rules matter."""
        self.collection.update(ids=[entry.id], embeddings=[list(entry.vector)], metadatas=[entry.metadata()],
                               documents=[entry.memo])

    def get(self, seq: int) -> Entry | None:
        got = self.collection.get(ids=[entry_id(self.ledger, seq)], include=["metadatas", "documents", "embeddings"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return Entry(ledger=meta["ledger"], seq=meta["seq"], account=meta["account"], side=meta["side"],
                     amount_cents=meta["amount_cents"], posted=meta["posted"], memo=got["documents"][0],
                     vector=tuple(float(x) for x in got["embeddings"][0]))

    def count(self) -> int:
        return self.collection.count()

    def entries(self, account: str, side: str, min_cents: int = 0) -> list[str]:
        """Ids of an account's debits or credits of at least ``min_cents``, in id order."""
        got = self.collection.get(where={"$and": [{"account": account}, {"side": side},
                                                  {"amount_cents": {"$gte": min_cents}}]})
        return sorted(got["ids"])  # get() order is not stable across releases

    def nearest(self, vector: Sequence[float], account: str, posted_since: int, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` entries of ``account`` posted on or after ``posted_since`` closest to ``vector``
        (squared L2 distance, as Chroma reports it), closest first."""
        got = self.collection.query(query_embeddings=[list(vector)], n_results=n, include=["distances"],
                                    where={"$and": [{"account": account}, {"posted": {"$gte": posted_since}}]})
        return list(zip(got["ids"][0], (float(d) for d in got["distances"][0])))
