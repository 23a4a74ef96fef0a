from __future__ import annotations

import random

import pytest

from ledger_app.store import Entry, ledger_uuid

ACCOUNTS = ["cash", "receivables", "payables", "revenue"]
DIM = 8


def vector(rng: random.Random) -> tuple[float, ...]:
    # multiples of 1/64: exact in float32, so a vector read back compares exactly
    return tuple(rng.randint(-64, 64) / 64 for _ in range(DIM))


def make_entries(name: str, n: int, seed: int = 0) -> list[Entry]:
    rng = random.Random(seed)
    ledger = ledger_uuid(name)
    return [Entry(ledger=ledger, seq=i, account=ACCOUNTS[i % len(ACCOUNTS)], side=("debit", "credit")[i % 3 == 0],
                  amount_cents=rng.randint(1, 500_000), posted=20240101 + (i % 28), memo=f"entry {i} of {name}",
                  vector=vector(rng))
            for i in range(1, n + 1)]


@pytest.fixture
def root(tmp_path):
    return tmp_path / "ledgers"
