"""Contracts measured through every write call, and refusals that became silent empty answers.

Measured on real releases (issue 13): a contract measured through ``add`` alone said "None metadata
refused everywhere", yet upsert/update accept None and drop the key; ``where={"s": {"$contains": ...}}``
on a string field raises up to 1.4.1 and matches nothing, without an error, from 1.5.0 on, which a
bare "error -> ok" hid. Expected values are what these releases answered when measured.
Observations go to a private cache so the probes really run.
"""

from __future__ import annotations

import argparse
import json

import pytest

from pytest_chroma_compat.contracts import cli, measure

VERSIONS = ["0.6.3", "1.4.1", "1.5.0", "1.5.9"]
PROBES = ["metadata_types", "where_contains"]
CONTRACTS = ["metadata-value-types", "where-contains-metadata"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contracts-by-call-cache")


@pytest.fixture(scope="module")
def observed(cache):
    obs = measure.observe_many(VERSIONS, PROBES, cache=cache, jobs=2)
    for version in VERSIONS:
        assert obs[version].failures == {}, obs[version].failures
    return obs


def test_metadata_is_measured_through_each_write_call(observed):
    for version in VERSIONS:
        value = observed[version].values["metadata_types"]
        assert set(value) == {"add", "upsert", "update"}, version
        assert value["add"]["str"] == value["upsert"]["str"] == value["update"]["str"] == "kept"


def test_none_metadata_refused_by_add_but_dropped_by_upsert_and_update_on_1_5_9(observed):
    value = observed["1.5.9"].values["metadata_types"]
    assert value["add"]["none"] == {"error": "TypeError"}
    assert value["upsert"]["none"] == value["update"]["none"] == "dropped"
    assert "none: add refuses (TypeError); upsert/update accept and drop the key" in measure.by_call(value)


def test_calls_that_agree_say_nothing_by_call(observed):
    value = observed["0.6.3"].values["metadata_types"]  # every call refuses None with the same error
    assert value["add"]["none"] == value["upsert"]["none"] == value["update"]["none"] == {"error": "ValueError"}
    assert not [line for line in measure.by_call(value) if line.startswith("none:")]


def test_contains_on_a_string_field_turns_silently_empty_at_1_5_0(observed):
    chosen = [measure.contract("where-contains-metadata")]
    (history,) = measure.histories(VERSIONS, observed, chosen)
    assert [(c["after"], c["at"]) for c in history.changes] == [("1.4.1", "1.5.0")]
    change = history.changes[0]
    assert change["before"]["string, substring"] == {"error": "ValueError"}
    assert change["value"]["string, substring"] == change["value"]["string, whole value"] == []
    assert {"string, substring", "string, whole value"} <= set(change["silently_empty"])
    assert "list" not in change["silently_empty"]  # lists became searchable: an answer, not silence
    text = measure.describe_change(change["before"], change["value"])
    assert "string, substring: error:ValueError -> [] (now silently matches nothing)" in text
    doc = {
        "generated": "-",
        "range": "-",
        "versions": VERSIONS,
        "probes_sha256": "-",
        "contracts": [history.as_dict()],
        "failures": {},
    }
    assert "1.5.0 (now silently matches nothing)" in cli.markdown(doc)


def test_pair_output_names_the_silent_empty_and_the_per_call_answers(observed, cache, monkeypatch, capsys):
    monkeypatch.setattr(measure, "default_cache", lambda: cache)  # the answers measured above, not others
    chosen = tuple(measure.contract(c) for c in CONTRACTS)
    monkeypatch.setattr(measure, "load_table", lambda: chosen)
    args = argparse_args("--from", "1.4.1", "--to", "1.5.9")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "NOTE     now silently matches nothing: 'string, substring'; 'string, whole value'" in out
    assert "by call  none: add refuses (TypeError); upsert/update accept and drop the key (1.5.9)" in out
    args = argparse_args("--from", "1.4.1", "--to", "1.5.9", "--json")
    assert args.handler(args) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["contracts"]}
    assert "string, substring" in rows["where-contains-metadata"]["silently_empty"]
    assert rows["metadata-value-types"]["to_by_call"][0].startswith("none: add refuses")


def argparse_args(*argv: str):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["contracts", *argv])
