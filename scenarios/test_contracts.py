"""Each migration-log contract, checked on the pair under test (--chroma-from / --chroma-to).

Crossing a contract is information about the upgrade, not a failure: each test
passes either way and records what it saw (user_properties ``crossed``,
``from_value``, ``to_value``, shown in JUnit XML and with ``-rP``). A test fails
only when its probe could not run on one of the releases (a crashed or hung
worker, a release that does not install). The verdict line counts the crossings.
"""

from __future__ import annotations

import pytest

from pytest_chroma_compat.contracts.measure import compact, compare, describe_change, load_table
from pytest_chroma_compat.plugin.pair_checks import CROSSED

MEASURED = [c for c in load_table() if c.probe]


@pytest.fixture(scope="module")
def crossings(chroma_pair):
    """Every contract on both releases, once per session (answers are cached per release and
    probe source); contracts sharing a probe are attributed to the one documented in range."""
    return {x.contract.id: x for x in compare(*chroma_pair)}


@pytest.mark.parametrize(
    "contract", [pytest.param(c, id=c.id, marks=pytest.mark.chroma_verdict("contract", c.id)) for c in MEASURED]
)
def test_contract(contract, chroma_pair, crossings, record_property, request):
    old, new = chroma_pair
    x = crossings[contract.id]
    if x.failure:
        pytest.fail(f"probe {contract.probe} could not run: {x.failure}", pytrace=False)
    record_property("contract", contract.id)
    record_property("log_entry", contract.section)
    record_property("crossed", x.crossed)
    record_property("from_value", compact(x.before))
    record_property("to_value", compact(x.after))
    if x.crossed:
        request.config.stash.setdefault(CROSSED, []).append(f"{contract.id}: {contract.consequence}")
        print(
            f"CROSSED {contract.id} [{contract.section}] {old} -> {new}: {describe_change(x.before, x.after)}\n"
            f"  means: {contract.consequence}"
        )
    else:
        print(
            f"not crossed {contract.id} [{contract.section}]: {compact(x.before)}"
            + (f" (the change is {x.shadowed_by}'s)" if x.shadowed_by else "")
        )
