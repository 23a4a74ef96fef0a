"""A filter that stops filtering is named: "now silently matches everything".

Measured on real releases (issue 13): ``where={"s": {"$not_contains": "ell"}}`` on a string metadata
field raises up to 1.4.1 and, from 1.5.0 on, matches every record of the collection without an
error -- code that caught the error (or trusted the filter) now acts on every record. The label
stands beside "now silently matches nothing" (``$contains`` on the same field, same release).
Expected values are what these releases answered when measured; the cache is private.
"""

from __future__ import annotations

import argparse
import json

import pytest

from pytest_chroma_compat.contracts import cli, measure
from pytest_chroma_compat.contracts.probes import EVERY_RECORD

VERSIONS = ["1.4.1", "1.5.0", "1.5.9"]
PROBES = ["where_contains", "operators"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contracts-everything-cache")


@pytest.fixture(scope="module")
def observed(cache):
    obs = measure.observe_many(VERSIONS, PROBES, cache=cache, jobs=2)
    for version in VERSIONS:
        assert obs[version].failures == {}, obs[version].failures
    return obs


def test_not_contains_on_a_string_field_matches_every_record_from_1_5_0(observed):
    assert observed["1.4.1"].values["where_contains"]["string, $not_contains"] == {"error": "ValueError"}
    for version in ("1.5.0", "1.5.9"):
        assert observed[version].values["where_contains"]["string, $not_contains"] == EVERY_RECORD, version


def test_a_filter_matching_some_records_is_not_called_everything(observed):
    for version in VERSIONS:  # document $not_contains matches b, c, d of a..d: a real answer
        assert observed[version].values["operators"]["$not_contains"] == ["b", "c", "d"], version
        assert EVERY_RECORD not in observed[version].values["operators"].values()


def test_the_flip_is_placed_at_1_5_0_and_labelled(observed):
    (history,) = measure.histories(VERSIONS, observed, [measure.contract("where-contains-metadata")])
    assert [(c["after"], c["at"]) for c in history.changes] == [("1.4.1", "1.5.0")]
    change = history.changes[0]
    assert change["silently_everything"] == ["string, $not_contains"]
    assert "string, $not_contains" not in change["silently_empty"]
    text = measure.describe_change(change["before"], change["value"])
    assert 'string, $not_contains: error:ValueError -> "every record" (now silently matches everything)' in text
    assert "string, substring: error:ValueError -> [] (now silently matches nothing)" in text
    doc = {
        "generated": "-",
        "range": "-",
        "versions": VERSIONS,
        "probes_sha256": "-",
        "contracts": [history.as_dict()],
        "failures": {},
    }
    assert "1.5.0 (now silently matches nothing) (now silently matches everything)" in cli.markdown(doc)


def argparse_args(*argv: str):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["contracts", *argv])


def test_pair_output_names_both_silent_changes(observed, cache, monkeypatch, capsys):
    monkeypatch.setattr(measure, "default_cache", lambda: cache)
    chosen = (measure.contract("where-contains-metadata"),)
    monkeypatch.setattr(measure, "load_table", lambda: chosen)
    args = argparse_args("--from", "1.4.1", "--to", "1.5.9")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert (
        "NOTE     now silently matches everything: 'string, $not_contains' raised or matched some records "
        "under 1.4.1, match every record (no error) under 1.5.9" in out
    )
    assert "NOTE     now silently matches nothing: 'string, substring'" in out
    args = argparse_args("--from", "1.4.1", "--to", "1.5.9", "--json")
    assert args.handler(args) == 0
    (row,) = json.loads(capsys.readouterr().out)["contracts"]
    assert row["silently_everything"] == ["string, $not_contains"]
