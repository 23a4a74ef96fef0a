"""Stores written by older chromadb releases, read by the chromadb this app runs today."""

import chromadb
import pytest
from chromadb.config import Settings

from receipt_app.store import ReceiptIndex


def open_index(path) -> ReceiptIndex:
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    return ReceiptIndex(client)


@pytest.mark.chroma_versions()  # the releases in pyproject.toml: chroma_compat_versions
def test_old_receipts_answer_the_same_queries(chroma_store_from, chroma_version):
    index = open_index(chroma_store_from(chroma_version, seed="receipt_app.seed:seed"))
    assert index.words_of("r1") == ["4.50", "COFFEE", "TOTAL"]
    assert index.totals() == {"r1": "Blue Bottle", "r2": "Bagel Barn"}
    assert index.lines_mentioning("TOTAL") == ["r1-l2"]
    assert index.nearest_word([0.85, 0.15, 0.05], merchant="Bagel Barn") == "BAGEL"


@pytest.mark.chroma_versions("0.4.24", "1.0.21")
def test_the_app_keeps_writing_to_an_upgraded_store(chroma_store_from, chroma_version):
    index = open_index(chroma_store_from(chroma_version, seed="receipt_app.seed:seed"))
    index.add_word("r1-w4", "TIP", "r1", [0.5, 0.5, 0.5])
    assert "TIP" in index.words_of("r1")
