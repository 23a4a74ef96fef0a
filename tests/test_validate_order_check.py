"""The ``order`` data check (contract ``get-order-internal-ids``): get()'s ids and order, on the store's own ids.

0.4.20-0.5.8 return get() sorted by user id, 0.3.x-0.4.19 and 0.5.9 on by insertion (measured, docs/contracts.md).
A 0.4.24 store whose ids were inserted out of sorted order, validated ``--to 1.5.9``, pages differently on
the two releases: reported (info, not a failure: the records survive, and whether code pages is the
scan's to say), saying how. The same ids inserted in sorted order: the change cannot touch them, pass.
Stores are written by real releases; nothing is mocked.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import order_check
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import NEW, OLD

RECORDS = 200
CONTRACT = "data:get-order-internal-ids"


def _store(version: str, path: Path, shuffled: bool) -> Path:
    ids = [f"doc-{i:04d}" for i in range(RECORDS)]
    if shuffled:
        random.Random(3).shuffle(ids)
    with Release(version) as release, release.persistent(path) as client:
        col = client.create_collection("items")
        col.add(
            ids=ids,
            embeddings=np.random.default_rng(3).normal(size=(RECORDS, 4)).astype(np.float32),
            metadatas=[{"n": i} for i in range(RECORDS)],
        )
    return path


@pytest.fixture(scope="module")
def shuffled_old(tmp_path_factory) -> Path:
    return _store(OLD, tmp_path_factory.mktemp("order") / "shuffled", shuffled=True)


@pytest.fixture(scope="module")
def sorted_old(tmp_path_factory) -> Path:
    return _store(OLD, tmp_path_factory.mktemp("order") / "sorted", shuffled=False)


def _check(result):
    return next(c for c in result.checks if c.name == CONTRACT and c.collection == "items")


def _run(store: Path, to: str, tmp_path: Path, contracts: bool = False):
    return validate(str(store), to, workdir=tmp_path / "work", contracts=contracts)


def test_shuffled_ids_upgraded_across_the_change_are_reported_saying_how(shuffled_old, tmp_path):
    result = _run(shuffled_old, NEW, tmp_path, contracts=True)
    check = _check(result)
    assert check.status == "info", check.detail
    assert result.exit_code == 0, result.summary  # the records survive: the order is a note, scan names the code
    assert "code that pages with get(limit, offset)" in check.detail and "chroma-compat scan" in check.detail
    assert f"page 1 of get(limit={order_check.ORDER_PAGE})" in check.detail
    assert f"chromadb {OLD} pages sorted by id" in check.detail
    assert f"{NEW} by insertion (internal id), not by id" in check.detail
    ev = check.evidence
    assert ev["source order"] == "sorted by id" and ev["target order"] != "sorted by id"
    assert ev["ids paged"] == RECORDS and ev["pages asked"] == 2
    assert ev["first page that differs"] == 1 and ev["mandatory"] is True
    # get(ids=...) returns exactly the ids asked on both; its order is reported
    assert ev["ids asked by id"] == 64
    assert ev["source get(ids) order"] == "sorted by id" and ev["target get(ids) order"] == "in get() order"
    assert (
        f"get(ids=[...]) returns the same records sorted by id on chromadb {OLD}, in get() order on {NEW}"
        in check.detail
    )


def test_crossing_not_measured_is_info(shuffled_old, tmp_path):
    """--no-contracts: whether the upgrade crosses the contract is unknown, the difference is shown as info."""
    check = _check(_run(shuffled_old, NEW, tmp_path))
    assert check.status == "info" and "not measured here" in check.detail, check.detail


def test_sorted_ids_cannot_be_touched_by_the_change(sorted_old, tmp_path):
    check = _check(_run(sorted_old, NEW, tmp_path, contracts=True))
    assert check.status == "pass", check.detail
    assert "cannot touch this data" in check.detail
    assert check.evidence["source order"] == check.evidence["target order"] == "sorted by id"


def test_same_release_pages_alike(shuffled_old, tmp_path):
    check = _check(_run(shuffled_old, OLD, tmp_path))
    assert check.status == "pass", check.detail


def test_crossed_and_not_crossed_are_worded_apart(shuffled_old, tmp_path):
    """The same differing answers: where the upgrade crosses the contract (mandatory), the note says what code
    meets; otherwise that the contract is not crossed."""
    copy = tmp_path / "copy"
    shutil.copytree(shuffled_old, copy)
    with Release(OLD) as old, Release(NEW) as new, old.persistent(shuffled_old) as a, new.persistent(copy) as b:
        src, tgt = a.get_collection("items"), b.get_collection("items")
        got = {
            m: order_check.order_result(
                "get-order-internal-ids", "t", "items", src, tgt, count=RECORDS, budget=64, mandatory=m
            )
            for m in (True, False)
        }
    assert got[True].status == "info" and "sees other records per page" in got[True].detail
    assert got[False].status == "info" and "not crossed by this upgrade" in got[False].detail
    assert got[True].evidence["why mandatory"]


@pytest.mark.parametrize("version", ["0.5.23", "1.0.21"])
def test_insertion_order_releases_page_alike_to_new(version, tmp_path):
    """0.5.9 on orders by insertion, as 1.5.9 does: out-of-order ids cannot be touched by the change."""
    store = _store(version, tmp_path / "store", shuffled=True)
    check = _check(_run(store, NEW, tmp_path))
    assert check.status == "pass", check.detail
    assert check.evidence["source order"] == "by insertion (internal id), not by id"
