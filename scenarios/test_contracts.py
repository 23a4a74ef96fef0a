"""Each migration-log contract, checked on the pair under test (--chroma-from / --chroma-to).

Crossing a contract is information about the upgrade, not a failure: each test
passes either way and records what it saw (user_properties ``crossed``,
``from_value``, ``to_value``, shown in JUnit XML and with ``-rP``). A test fails
only when its probe could not run on one of the releases (a crashed or hung
worker, a release that does not install).
"""

from __future__ import annotations

import pytest

from pytest_chroma_compat.contracts.measure import compact, describe_change, load_table, observe, probe_names

MEASURED = [c for c in load_table() if c.probe]


@pytest.fixture(scope="module")
def contract_observations(chroma_pair, chroma_releases):
    """Every probe on both releases, once per session (answers are cached per release and probe source)."""
    probes = probe_names(MEASURED)
    return {version: observe(chroma_releases.get(version), probes) for version in chroma_pair}


@pytest.mark.parametrize("contract", MEASURED, ids=[c.id for c in MEASURED])
def test_contract(contract, chroma_pair, contract_observations, record_property):
    old, new = chroma_pair
    failures = [f"{v}: {contract_observations[v].failures[contract.probe]}" for v in chroma_pair
                if contract.probe in contract_observations[v].failures]
    if failures:
        pytest.fail(f"probe {contract.probe} could not run: " + "; ".join(failures), pytrace=False)
    before = contract_observations[old].values[contract.probe]
    after = contract_observations[new].values[contract.probe]
    crossed = before != after
    record_property("contract", contract.id)
    record_property("log_entry", contract.section)
    record_property("crossed", crossed)
    record_property("from_value", compact(before))
    record_property("to_value", compact(after))
    if crossed:
        print(f"CROSSED {contract.id} [{contract.section}] {old} -> {new}: {describe_change(before, after)}\n"
              f"  means: {contract.consequence}")
    else:
        print(f"not crossed {contract.id} [{contract.section}]: {compact(before)}")
