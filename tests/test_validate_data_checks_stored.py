"""The data checks of the other stored-data contracts, on stores written by real releases.

- ``ne-nin-complement`` (kind ``complement``): ``$ne``/``$nin`` on each key's stored values.
  Records lacking the key are counted apart; 0.4.24 leaves them out, 0.5.12 on includes them,
  so 0.4.24 -> 1.5.9 changes the answer, NOT SAFE only on a collection that holds such records.
- ``not-contains-complement`` (kind ``documents``): ``where_document`` ``$contains`` with
  substrings of the stored documents (full-text search: every record holding the substring must
  be found) and ``$not_contains`` (records without a document counted apart, as above).
- ``where-contains-metadata`` on list values: ``$contains`` per element (1.5 keeps lists).

A corrupted full-text index is the ``filters`` check's test (``test_filters_oracle.py``); here
the same corruption (its helpers, not a copy) shows the documents data check sees it too, with
many substrings instead of one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.engine.worker import filter_oracle
from pytest_chroma_compat.snapshot import data_checks
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import MID, NEW, OLD
from .test_filters_oracle import _rotate_fulltext, _write

N = 48


def _gaps_store(release: Release, path: Path) -> Path:
    """ "gaps": some records lack "shop", two have no document; "complete": every record has both."""
    emb = np.random.default_rng(2).normal(size=(N, 4)).astype(np.float32)
    with release.persistent(path) as client:
        col = client.create_collection("gaps")
        metas = [{"shop": ["acme", "bobs", "cafe"][i % 3], "n": i % 5} for i in range(N)]
        for i in range(0, N, 6):
            del metas[i]["shop"]
        col.add(
            ids=[f"g{i:03d}" for i in range(N)],
            embeddings=emb,
            metadatas=metas,
            documents=[f"order {i} shipped from warehouse {i % 7} to city {i * 3 % 11}" for i in range(N)],
        )
        col.add(ids=["g900", "g901"], embeddings=emb[:2], metadatas=[{"n": 1}, {"shop": "acme", "n": 2}])
        full = client.create_collection("complete")
        full.add(
            ids=[f"c{i:03d}" for i in range(N)],
            embeddings=emb,
            metadatas=[{"shop": ["acme", "bobs"][i % 2], "n": i % 3} for i in range(N)],
            documents=[f"note {i} about thing {i % 9}" for i in range(N)],
        )
    return path


def _validated(tmp_path_factory, writer: str, to: str, build) -> object:
    root = tmp_path_factory.mktemp(f"stored-{writer}")
    with Release(writer) as release:
        store = build(release, root / "store")
    result = validate(str(store), to, workdir=root / "work", contracts=False)
    assert not any((root / "work").glob("validate-*")), "private copies were left behind"
    return result


@pytest.fixture(scope="module")
def old_gaps(tmp_path_factory):
    """A 0.4.24 store validated for 1.5.9 in place: the upgrade crosses both complement contracts."""
    return _validated(tmp_path_factory, OLD, NEW, _gaps_store)


def _check(result, name: str, collection: str):
    return next(c for c in result.checks if c.name == name and c.collection == collection)


def test_ne_nin_change_is_not_safe_only_where_records_lack_the_key(old_gaps):
    assert old_gaps.exit_code == 1, old_gaps.summary
    bad = _check(old_gaps, "data:ne-nin-complement", "gaps")
    assert bad.status == "fail", bad.detail
    assert "changes which records $ne, $nin match on this store: it holds records lacking the key" in bad.detail
    # the key 'shop' lacks in 9 records (every sixth, and g900): 0.4.24 leaves them out, 1.5.9 includes them
    assert bad.evidence["records lacking the key"]["shop"] == N // 6 + 1
    example = next(e for e in bad.evidence["examples"] if "shop" in e["where"])
    assert example["outcome"] == "meaning changed"
    assert example["target"]["count"] - example["source"]["count"] == N // 6 + 1
    assert f"{N // 6 + 1} record(s) lack key 'shop' (g000, g006, g012)" in bad.detail
    assert "chromadb 0.4.24 leaves them out" in bad.detail and "1.5.9 includes them" in bad.detail
    # every record has the key: the same upgrade does not touch this data
    good = _check(old_gaps, "data:ne-nin-complement", "complete")
    assert good.status == "pass", good.detail
    assert "cannot touch this data" in good.detail and good.evidence["records lacking the key"] == {"n": 0, "shop": 0}


def test_documents_full_text_finds_every_record_and_not_contains_changes_on_documentless_records(old_gaps):
    bad = _check(old_gaps, "data:not-contains-complement", "gaps")
    assert bad.status == "fail", bad.detail
    assert set(bad.evidence["wrong answers per key and operator"][data_checks.DOCUMENTS]) == {"$not_contains"}
    assert bad.evidence["records lacking the key"] == {data_checks.DOCUMENTS: 2}
    assert "2 record(s) have no document (g900, g901)" in bad.detail
    tried = bad.evidence["values tried per key"][data_checks.DOCUMENTS]
    assert tried["values"] >= 16 and tried["complement values"] == data_checks.COMPLEMENT_VALUES
    good = _check(old_gaps, "data:not-contains-complement", "complete")
    assert good.status == "pass" and "substrings of the stored documents (full-text search)" in good.detail


@pytest.mark.slow
def test_the_same_data_after_0_5_12_is_safe(tmp_path_factory):
    """0.6.3 already includes records lacking the key: upgrading it to 1.5.9 changes nothing."""
    result = _validated(tmp_path_factory, MID, NEW, _gaps_store)
    for name in ("data:ne-nin-complement", "data:not-contains-complement"):
        check = _check(result, name, "gaps")
        assert check.status == "pass", check.detail
    assert _check(result, "data:ne-nin-complement", "gaps").evidence["records lacking the key"]["shop"] == N // 6 + 1


def _corrupt_with_lists(release: Release, path: Path) -> Path:
    """test_filters_oracle's store with its full-text index rotated, and a collection of list values."""
    _write(release, path)
    with release.persistent(path) as client:
        col = client.create_collection("tagged")
        col.add(
            ids=[f"t{i:02d}" for i in range(12)],
            embeddings=np.random.default_rng(4).normal(size=(12, 4)).astype(np.float32),
            metadatas=[{"tags": [f"a{i % 3}", f"b{i % 4}"], "n": [i, i + 1]} for i in range(12)],
        )
    _rotate_fulltext(path)
    return path


@pytest.fixture(scope="module")
def new_corrupt(tmp_path_factory):
    return _validated(tmp_path_factory, NEW, NEW, _corrupt_with_lists)


def test_a_corrupted_fulltext_index_fails_the_documents_check_too(new_corrupt):
    check = _check(new_corrupt, "data:not-contains-complement", "notes")
    assert check.status == "pre-existing", check.detail  # both releases read the store's own index
    assert "$contains" in check.evidence["wrong answers per key and operator"][data_checks.DOCUMENTS]
    assert "documents, operator $contains, text '" in check.detail
    assert next(c for c in new_corrupt.checks if c.name == "filters").status == "pre-existing"  # the link


def test_list_values_are_asked_per_element(new_corrupt):
    check = _check(new_corrupt, "data:where-contains-metadata", "tagged")
    assert check.status == "pass", check.detail
    tried = check.evidence["values tried per key"]
    assert tried["tags" + filter_oracle.ELEMENTS]["values"] == 7  # a0-a2, b0-b3
    assert tried["n" + filter_oracle.ELEMENTS]["values"] == 13  # ints 0..12
    assert check.evidence["filters asked"] == 2 * (7 + 13)


# -- the parts, without a release ---------------------------------------------------------------------------


def _digest(ids: list[str]) -> dict:
    return {"count": len(ids), "digest": f"{filter_oracle.id_sum(ids):016x}", "sample": sorted(ids)[:10]}


def test_complement_outcome_places_each_answer_on_one_side():
    missing = _digest(["m"])
    e = {**_digest(["a"]), "uncertain": 1, "uncertain_digest": missing["digest"]}
    a = data_checks.Asked(
        {"k": {"$ne": 1}}, None, "ne-nin-complement", "k", "$ne", complement=True, expected=e, missing=missing
    )
    without, with_ = _digest(["a"]), _digest(["a", "m"])
    assert data_checks.complement_outcome(a, without, with_) == "meaning changed"
    assert data_checks.complement_outcome(a, with_, with_) == "right"
    assert data_checks.complement_outcome(a, without, _digest([])) == "wrong"
    none_missing = data_checks.Asked(
        {"k": {"$ne": 1}},
        None,
        "ne-nin-complement",
        "k",
        "$ne",
        complement=True,
        expected={**without, "uncertain": 0, "uncertain_digest": "0" * 16},
        missing=_digest([]),
    )
    assert data_checks.complement_outcome(none_missing, without, without) == "right"


def test_the_new_rows_are_table_links():
    checks = {dc.contract_id: dc for dc in data_checks.table_checks()}
    assert checks["ne-nin-complement"].kind == "complement"
    assert checks["not-contains-complement"].kind == "documents"
    assert "list" in checks["where-contains-metadata"].types


def test_plans_of_the_new_kinds():
    checks = {dc.contract_id: dc for dc in data_checks.table_checks()}
    lists = checks["where-contains-metadata"]
    elements = {
        "n" + filter_oracle.ELEMENTS: {"values": [1, 2], "sampled": False},
        "s": {"values": [3, "x"], "sampled": False},
    }
    p = data_checks.plan([lists], {lists.contract_id: elements}, budget={lists.contract_id: 8}, count=10)
    assert [a.clause() for a in p.asked if a.op == "$contains"] == [
        {"where": {"n": {"$contains": 1}}},
        {"where": {"n": {"$contains": 2}}},
        {"where": {"s": {"$contains": "x"}}},
    ]
    ne = checks["ne-nin-complement"]
    p = data_checks.plan(
        [ne],
        {ne.contract_id: {"k": {"values": list(range(20)), "sampled": False}}},
        budget={ne.contract_id: 64},
        count=10,
    )
    assert sum(a.op == "$ne" for a in p.asked) == data_checks.COMPLEMENT_VALUES and all(a.complement for a in p.asked)
    assert {"where": {"k": {"$nin": [0]}}} in [a.clause() for a in p.asked]
    docs = checks["not-contains-complement"]
    texts = {data_checks.DOCUMENTS: {"values": ["note 1 ab"], "sampled": False}}
    p = data_checks.plan([docs], {docs.contract_id: texts}, budget={docs.contract_id: 64}, count=10_000_000)
    assert [(a.clause(), a.complement) for a in p.asked] == [
        ({"where_document": {"$contains": "note 1 ab"}}, False),
        ({"where_document": {"$not_contains": "note 1 ab"}}, True),
    ]
    assert p.tried[docs.contract_id][data_checks.DOCUMENTS]["sampled"] is True  # only the first pages' texts
