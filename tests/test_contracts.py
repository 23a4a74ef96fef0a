"""Contracts on real releases: probes answer, answers are cached, crossings are found.

The expected values below are what these releases answered when measured
(`chroma-compat contracts --measure`, docs/contracts.md), not what the log says.
Observations go to a private cache so the first run really measures; the
environments themselves come from the normal cache.
"""

from __future__ import annotations

import argparse
import json
import time

import pytest

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.contracts import measure
from pytest_chroma_compat.contracts.cli import register
from pytest_chroma_compat.engine.client import Release

VERSIONS = ["0.4.24", "0.5.23", "0.6.3", "1.5.9"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contracts-cache")


@pytest.fixture(scope="module")
def observed(cache):
    started = time.monotonic()
    obs = measure.observe_many(VERSIONS, cache=cache, jobs=2)
    return obs, time.monotonic() - started


@pytest.mark.slow
def test_every_probe_answers_on_every_release(observed):
    obs, _ = observed
    for version in VERSIONS:
        assert obs[version].failures == {}, obs[version].failures
        assert set(obs[version].values) == set(measure.probe_names())
        assert not obs[version].cached


@pytest.mark.slow
def test_a_second_run_reads_the_cache_without_starting_a_worker(observed, cache):
    _, first_seconds = observed
    for version in VERSIONS:
        release = Release(version)
        started = time.monotonic()
        again = measure.observe(release, cache=cache)
        assert again.cached and release._worker is None
        assert time.monotonic() - started < 1.0
        assert again.values == observed[0][version].values
    assert first_seconds > 2.0  # the first run did start releases


@pytest.mark.slow
def test_fresh_measures_again_and_agrees(observed, cache):
    again = measure.observe("1.5.9", ["get_order", "list_collections_type"], cache=cache, fresh=True)
    assert not again.cached
    assert again.values["get_order"] == observed[0]["1.5.9"].values["get_order"]


def _by_id(crossings):
    return {x.contract.id: x for x in crossings}


@pytest.mark.slow
def test_list_collections_changes_type_at_0_6_and_back_at_1_x(cache):
    to_06 = _by_id(measure.crossed("0.5.23", "0.6.3", cache=cache))
    assert to_06["list-collections-names"].before == "list[Collection]"
    assert to_06["list-collections-names"].after == "list[CollectionName(str)]"
    to_1x = _by_id(measure.crossed("0.6.3", "1.5.9", cache=cache))
    assert to_1x["list-collections-objects"].before == "list[CollectionName(str)]"
    assert to_1x["list-collections-objects"].after == "list[Collection]"
    assert "list-collections-objects" not in _by_id(measure.crossed("0.4.24", "1.5.9", cache=cache))


@pytest.mark.slow
def test_0_4_to_0_5_crosses_order_filters_and_empty_where(cache):
    x = _by_id(measure.crossed("0.4.24", "0.5.23", cache=cache))
    assert x["get-order-internal-ids"].before == {"get()": ["0", "1", "2", "3"], "get(limit=2,offset=2)": ["2", "3"]}
    assert x["get-order-internal-ids"].after == {"get()": ["3", "2", "1", "0"], "get(limit=2,offset=2)": ["1", "0"]}
    assert x["ne-nin-complement"].before == {"$ne": ["c"], "$nin": ["c"]}
    assert x["ne-nin-complement"].after == {"$ne": ["b", "c", "d"], "$nin": ["b", "c", "d"]}
    assert x["empty-filters-rejected"].before["where={}"] == 2
    assert x["empty-filters-rejected"].after["where={}"] == {"error": "ValueError"}
    assert x["embeddings-numpy"].after["get"] == "ndarray"
    assert "list-collections-names" not in x


@pytest.mark.slow
def test_histories_place_changes_between_measured_releases(observed):
    hist = {h.contract.id: h for h in measure.histories(VERSIONS, observed[0])}
    names = hist["list-collections-names"]
    assert [(c["after"], c["at"]) for c in names.changes] == [("0.5.23", "0.6.3"), ("0.6.3", "1.5.9")]
    assert names.verdict.startswith("agrees") and not names.disagrees  # 0.6.0 lies in (0.5.23, 0.6.3]
    assert "documented by list-collections-objects" in names.verdict
    assert hist["builtin-auth-removed"].verdict.startswith("agrees")  # measured on live servers


def test_documented_release_reads_versions_and_dates():
    assert measure.documented_release("v0.5.11")[0] == "0.5.11"
    assert measure.documented_release("v0.5.6")[0] == "0.5.7"  # 0.5.6 was never on the index
    assert measure.documented_release("April 20, 2024")[0] == "0.5.0"  # uploaded 2024-04-23
    assert measure.documented_release("")[0] is None


def test_the_table_names_only_existing_probes():
    from pytest_chroma_compat.contracts import probes, server_probes, side_effects

    for c in measure.load_table():
        known = c.probe and (
            callable(getattr(probes, c.probe, None))
            or c.probe in server_probes.PROBES
            or callable(getattr(side_effects, c.probe, None))
        )
        assert known or c.unmeasured, c.id


def _parse(*argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["contracts", *argv])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--from", "0.4.24"],
        ["--from", "0.4.24", "--to", "1.5.9", "--measure"],
        ["--measure", "--versions", "not a range"],
        ["--measure", "--versions", "==9.9.9"],
        ["--from", "9.9.9", "--to", "1.5.9"],
        ["--from", "0.4.24", "--to", "1.5.9", "--markdown", "x.md"],
    ],
)
def test_bad_input_is_a_compat_error(argv):
    args = _parse(*argv)
    with pytest.raises(CompatError):
        args.handler(args)


def test_pair_json_output(capsys):
    args = _parse("--from", "0.6.3", "--to", "1.5.9", "--json")
    assert args.handler(args) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in doc["contracts"]}
    assert rows["list-collections-objects"]["crossed"] is True
    assert rows["persist-removed"]["crossed"] is False
    assert doc["not_measured"] == []
