"""Filters exercise full-text search and are judged against the data itself.

A store whose full-text index answers wrongly is wrong for every release that
reads it, so comparing two releases' answers finds nothing: the expected ids of
each filter come from the records the source worker reads (``engine/worker/filter_oracle.py``).
The stores here are written by real releases; the corruption is done with sqlite3
on the store's own ``embedding_fulltext_search`` table, which both 0.4.24 and
1.5.9 answer ``where_document`` from (measured: after the indexed texts of two
records are swapped, each release returns the other record).
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.engine.worker import filter_oracle
from pytest_chroma_compat.snapshot import compare
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import NEW, OLD

WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]
RECORDS = 60


def _every_word_everywhere(n: int = RECORDS) -> list[str]:
    """Documents that are permutations of one vocabulary: no word tells any two apart."""
    return [" ".join(p) for p in itertools.islice(itertools.permutations(WORDS), n)]


def _write(release: Release, path: Path) -> Path:
    rng = np.random.default_rng(3)
    with release.persistent(path) as client:
        col = client.create_collection("notes")
        col.add(
            ids=[f"note-{i:03d}" for i in range(RECORDS)],
            embeddings=rng.normal(size=(RECORDS, 4)).astype(np.float32),
            documents=_every_word_everywhere(),
            metadatas=[{"n": i % 4} for i in range(RECORDS)],
        )
    return path


def _rotate_fulltext(store: Path) -> None:
    """Every record's indexed text moves to the next record: the documents read back unchanged,
    and every full-text answer names a neighbour instead."""
    with sqlite3.connect(store / "chroma.sqlite3") as db:
        rows = db.execute("SELECT rowid, string_value FROM embedding_fulltext_search ORDER BY rowid").fetchall()
        assert len(rows) == RECORDS
        for (rowid, _), (_, text) in zip(rows, rows[1:] + rows[:1]):
            db.execute("UPDATE embedding_fulltext_search SET string_value = ? WHERE rowid = ?", (text, rowid))
    db.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fulltext")
    out = {}
    for version in (NEW, OLD):
        with Release(version) as release:
            clean = _write(release, root / f"{version}-clean")
        corrupt = root / f"{version}-corrupt"
        shutil.copytree(clean, corrupt)
        _rotate_fulltext(corrupt)
        out[version], out[f"{version} corrupt"] = clean, corrupt
    return out


def test_a_document_filter_is_picked_when_every_word_occurs_everywhere():
    docs = _every_word_everywhere(120)
    picked = compare.pick_filters([{"n": i % 4} for i in range(120)], docs)
    texts = [f.where_document["$contains"] for f in picked if f.where_document]
    assert len(texts) == 1, [f.clause() for f in picked]
    text = texts[0]
    assert 6 <= len(text) <= 12 and all(c in filter_oracle.SAFE_TEXT for c in text)
    assert 0 < sum(text in d for d in docs) <= len(docs) // 10  # selective, though no word is


def test_data_says_which_records_a_filter_matches():
    """The worker's judge of a filter is plain Python with the semantics every release shares."""
    expected = filter_oracle.Expected(
        [
            {"where": None, "where_document": {"$contains": "bravo echo"}},
            {"where": {"n": {"$eq": 1}}, "where_document": None},
            {"where": {"n": {"$gt": 1.5}}, "where_document": None},
        ]
    )
    expected.update(
        ["a", "b", "c", "d"],
        ["alpha bravo echo", "Bravo echo", None, "bravo echoes"],
        [{"n": 1}, {"n": 1.0}, {"n": 2}, {"n": True}],
    )
    doc, eq, gt = expected.result()
    assert (doc["count"], doc["sample"], doc["uncertain"]) == (2, ["a", "d"], 0)  # case-sensitive substring
    assert doc["digest"] == f"{filter_oracle.id_sum(['d', 'a']):016x}"
    assert (eq["count"], eq["uncertain"]) == (1, 1)  # 1.0 for 1: 0.4.x and later releases disagree
    assert (gt["count"], gt["sample"]) == (1, ["c"])  # bools are not numbers


@pytest.mark.parametrize("writer,target", [(NEW, NEW), (OLD, NEW)])
def test_a_corrupted_fulltext_index_is_not_safe(stores, tmp_path, writer, target):
    result = validate(str(stores[f"{writer} corrupt"]), target, workdir=tmp_path / "work", contracts=False)
    check = next(c for c in result.checks if c.name == "filters")
    assert result.exit_code == 1, result.summary
    assert check.status == "pre-existing", check.detail
    assert "full-text index answers wrongly: both releases" in check.detail, check.detail
    bad = next(m for m in check.evidence["mismatches"] if "where_document" in m)
    text = bad["where_document"]["$contains"]
    truth = sorted(f"note-{i:03d}" for i, d in enumerate(_every_word_everywhere()) if text in d)
    assert bad["expected from the data"]["count"] == len(truth), bad
    assert bad["expected from the data"]["sample"] == truth[: filter_oracle.SAMPLE], bad
    assert bad["source"] == bad["target"] and bad["source"]["sample"] != bad["expected from the data"]["sample"]
    assert f"the data has {len(truth)} matching record(s) ({truth[0]}" in check.detail and text in check.detail
    # everything else about the store is fine: only the full-text index is wrong, which the full-text data
    # check (where_document on substrings of the stored documents) finds too, with many substrings
    assert {c.name for c in result.failed} == {"filters", "data:not-contains-complement"}, [
        (c.name, c.detail) for c in result.failed
    ]
    docs = next(c for c in result.checks if c.name == "data:not-contains-complement")
    assert (
        docs.status == "pre-existing"
        and "$contains" in docs.evidence["wrong answers per key and operator"]["(documents)"]
    ), docs.detail


@pytest.mark.parametrize("writer,target", [(NEW, NEW), (OLD, NEW)])
def test_the_same_store_uncorrupted_is_safe(stores, tmp_path, writer, target):
    result = validate(str(stores[writer]), target, workdir=tmp_path / "work", contracts=False)
    check = next(c for c in result.checks if c.name == "filters")
    assert result.exit_code == 0, result.summary
    assert check.status == "pass" and "1 full-text" in check.detail, check.detail
    judged = [f for f in check.evidence["filters"] if "where_document" in f]
    assert judged and all(f["source"]["count"] == f["expected from the data"]["count"] > 0 for f in judged)


def test_only_the_target_wrong_is_the_upgrade(tmp_path):
    """How answers are graded, with answers as ``id_digest`` gives them (the releases' side is above)."""
    right = {"count": 2, "digest": f"{filter_oracle.id_sum(['a', 'b']):016x}", "sample": ["a", "b"]}
    wrong = {"count": 2, "digest": f"{filter_oracle.id_sum(['a', 'c']):016x}", "sample": ["a", "c"]}
    f = compare._Filter(None, {"$contains": "bravo"}, expected={**right, "uncertain": 0})
    assert compare._judge(f, right, wrong, "0.4.24", "1.5.9")[0] == "fail"
    assert compare._judge(f, wrong, right, "0.4.24", "1.5.9")[0] == "pre-existing"
    assert compare._judge(f, wrong, wrong, "0.4.24", "1.5.9")[0] == "pre-existing"
    assert compare._judge(f, right, "error: boom", "0.4.24", "1.5.9")[0] == "fail"
    assert compare._judge(f, right, right, "0.4.24", "1.5.9")[0] == "pass"
    unsure = compare._Filter({"n": {"$eq": 1}}, None, expected={**right, "uncertain": 1})
    assert compare._judge(unsure, wrong, wrong, "0.4.24", "1.5.9")[0] == "pass"  # releases agree: not judged
