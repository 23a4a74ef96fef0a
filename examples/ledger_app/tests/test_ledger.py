"""The ledger application against whatever chromadb is installed.

Every test but one passes on every release from 0.4.24 to 1.5.9.
``test_reopen_ledger_lists_collections_as_objects`` fails on 0.6.0-0.6.3: there
``list_collections()`` returns names, not collections (migration log v0.6.0,
reverted in v1.0.0; contract ``list-collections-names`` in pytest-chroma-compat's
docs/contracts.md), and ``c.name`` on one of them raises 0.6's NotImplementedError
("In Chroma v0.6.0, list_collections only returns collection names").
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from ledger_app.store import BATCH_SIZE, LedgerNotFound, LedgerStore, entry_id, ledger_uuid

from .conftest import make_entries

N = 2 * BATCH_SIZE + 37  # three upsert batches, the last one partial


def test_batched_upsert_stores_every_entry_once(root):
    store = LedgerStore.create(root, "acme-2024")
    entries = make_entries("acme-2024", N)
    assert store.upsert(entries) == N
    assert store.count() == N
    # a re-import of part of the ledger, amounts changed: overwritten, not duplicated
    changed = [dataclasses.replace(e, amount_cents=e.amount_cents + 1) for e in entries[BATCH_SIZE - 5:BATCH_SIZE + 5]]
    store.upsert(changed)
    assert store.count() == N
    for e in changed:
        assert store.get(e.seq) == e
    assert store.get(1) == entries[0]
    assert store.get(N) == entries[-1]
    assert store.get(N + 1) is None


def test_ids_are_long_structured_strings(root):
    store = LedgerStore.create(root, "acme-2024")
    store.upsert(make_entries("acme-2024", 3))
    ledger = ledger_uuid("acme-2024")
    got = sorted(store.collection.get()["ids"])
    assert got == [f"LEDGER#{ledger}#ENTRY#0000{i}" for i in (1, 2, 3)] == [entry_id(ledger, i) for i in (1, 2, 3)]


def test_single_correction_rewrites_one_entry(root):
    store = LedgerStore.create(root, "acme-2024")
    entries = make_entries("acme-2024", 50)
    store.upsert(entries)
    fixed = dataclasses.replace(entries[9], amount_cents=12_345, memo="corrected: entry 10", side="credit",
                                vector=tuple(-x for x in entries[9].vector))
    store.correct(fixed)
    assert store.get(10) == fixed
    assert store.get(11) == entries[10]
    assert store.count() == 50
    assert store.nearest(fixed.vector, fixed.account, 0, n=1)[0][0] == fixed.id


def test_and_filter_selects_account_side_and_amount(root):
    store = LedgerStore.create(root, "acme-2024")
    entries = make_entries("acme-2024", N)
    store.upsert(entries)
    for account, side, floor in [("cash", "debit", 0), ("cash", "credit", 250_000), ("revenue", "debit", 400_000)]:
        want = sorted(e.id for e in entries if e.account == account and e.side == side and e.amount_cents >= floor)
        assert want, (account, side, floor)
        assert store.entries(account, side, floor) == want


def test_nearest_entries_by_l2_within_account_and_dates(root):
    store = LedgerStore.create(root, "acme-2024")
    entries = make_entries("acme-2024", N)
    store.upsert(entries)
    target = entries[41]
    candidates = [e for e in entries if e.account == target.account and e.posted >= 20240110]
    assert target in candidates
    want = sorted(candidates, key=lambda e: (sum((a - b) ** 2 for a, b in zip(e.vector, target.vector)), e.id))[:3]
    got = store.nearest(target.vector, target.account, 20240110, n=3)
    assert [i for i, _ in got][0] == target.id
    for (got_id, got_distance), e in zip(got, want):
        squared_l2 = sum((a - b) ** 2 for a, b in zip(e.vector, target.vector))
        assert math.isclose(got_distance, squared_l2, rel_tol=1e-4, abs_tol=1e-4), (got_id, e.id)
    assert {i for i, _ in got} == {e.id for e in want}


def test_one_store_per_ledger(root):
    a = LedgerStore.create(root, "acme-2024")
    b = LedgerStore.create(root, "globex-2024")
    a.upsert(make_entries("acme-2024", 20, seed=1))
    b.upsert(make_entries("globex-2024", 7, seed=2))
    assert (a.count(), b.count()) == (20, 7)
    assert sorted(p.name for p in root.iterdir()) == ["acme-2024", "globex-2024"]
    assert all((root / name / "chroma.sqlite3").is_file() for name in ("acme-2024", "globex-2024"))
    assert b.get(1).ledger == ledger_uuid("globex-2024") != a.get(1).ledger


def test_reopen_ledger_lists_collections_as_objects(root):
    """Breaks on 0.6.0-0.6.3 (list_collections() returns names there; documented at v0.6.0, reverted at v1.0.0)."""
    created = LedgerStore.create(root, "acme-2024")
    entries = make_entries("acme-2024", 30)
    created.upsert(entries)
    with pytest.raises(LedgerNotFound):
        LedgerStore.open(root, "nobody-2024")  # no such directory: nothing is created
    assert not (root / "nobody-2024").exists()
    reopened = LedgerStore.open(root, "acme-2024")
    assert reopened.ledger == ledger_uuid("acme-2024")
    assert reopened.count() == 30
    assert reopened.get(30) == entries[-1]
