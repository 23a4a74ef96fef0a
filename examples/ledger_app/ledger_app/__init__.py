"""Ledger entries in Chroma, one persistent store per ledger (an example application)."""

from .store import Entry, LedgerNotFound, LedgerStore, entry_id

__all__ = ["Entry", "LedgerNotFound", "LedgerStore", "entry_id"]
