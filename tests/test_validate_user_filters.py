"""The user's own filters (``validate --filters / --filters-from``, ``--chroma-snapshot-filters``).

The case behind it: a where ``$contains`` on a string field, which 1.3.4 refuses
with an error and 1.5.9 answers with ``[]`` (the contract where-contains-metadata):
code that caught the error now silently gets nothing, and validate must say
"now silently matches nothing", exit 1, whether the filter comes from a JSON file
or from the user's code (inside ``$and``, through the project's own helper).
The store is written by 1.3.4 itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import user_filters
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import NEW, run_cli

pytest_plugins = ["pytester"]

WRITER = "1.3.4"
CONTAINS = {"where": {"merchant": {"$contains": "a"}}}

APP = '''
import chromadb


def find(col, where):
    """The project's own helper: every lookup goes through it."""
    return col.get(where=where, include=["metadatas"])


def report(col):
    has_a = {"merchant": {"$contains": "a"}}
    return find(col, {"$and": [has_a, {"amount": {"$gte": 10.0}}]})


def runtime(col, who):
    return col.get(where={"merchant": who})
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("payments") / "store"
    merchants = ["acme", "bobs", "cafe"]
    with Release(WRITER) as release, release.persistent(path) as client:
        col = client.create_collection("payments")
        col.add(
            ids=[f"p{i:02d}" for i in range(60)],
            embeddings=np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32),
            documents=[f"payment {i} to {merchants[i % 3]}" for i in range(60)],
            metadatas=[{"merchant": merchants[i % 3], "amount": i * 2.5} for i in range(60)],
        )
    return path


def _user(result):
    return next(c for c in result.checks if c.name == "user-filters")


def test_contains_on_a_string_field_now_silently_matches_nothing(store, tmp_path):
    result = validate(
        str(store),
        NEW,
        workdir=tmp_path / "work",
        contracts=False,
        data_budget=8,
        filters=[
            CONTAINS,
            {"where": {"merchant": "acme"}, "collection": "payments"},
            {"where_document": {"$contains": "to bobs"}},
        ],
    )
    assert result.exit_code == 1, result.summary
    check = _user(result)
    assert check.status == "fail" and "now silently matches nothing" in check.detail
    outcomes = [f["outcome"] for f in check.evidence["filters"]]
    assert outcomes == ["now silently matches nothing", "right", "right"]
    first = check.evidence["filters"][0]
    assert first["source"].startswith("error:") and first["target"]["count"] == 0
    # the data cannot say what $contains on a string means (refused by 1.4, nothing on 1.5): not judged on it
    assert first["expected from the data"]["uncertain"] == 60
    assert "user-filters" in result.summary and "now silently matches nothing" in result.summary


def test_a_filter_naming_no_collection_of_the_store_cannot_be_checked(store, tmp_path):
    result = validate(
        str(store),
        NEW,
        workdir=tmp_path / "work",
        contracts=False,
        data_budget=0,
        filters=[{"where": {"merchant": "acme"}, "collection": "nope"}],
    )
    assert result.exit_code == 2
    assert any(c.name == "user-filters" and c.status == "error" and "nope" in c.detail for c in result.checks)


@pytest.mark.slow
def test_cli_filters_and_filters_from(store, tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps([CONTAINS]))
    app = tmp_path / "app"
    app.mkdir()
    (app / "search.py").write_text(APP)
    for option, value in (("--filters", filters), ("--filters-from", app)):
        got = run_cli(
            "validate",
            str(store),
            "--to",
            NEW,
            "--no-contracts",
            "--quiet",
            "--workdir",
            str(tmp_path),
            option,
            str(value),
        )
        assert got.returncode == 1, got.stdout + got.stderr
        assert "now silently matches nothing" in got.stdout, got.stdout
    assert "through find()" in got.stdout


@pytest.mark.slow
def test_pytest_chroma_snapshot_filters_option(store, pytester):
    pytester.makeini("[pytest]\n")
    (pytester.path / "filters.json").write_text(json.dumps([CONTAINS]))
    got = pytester.runpytest_subprocess(
        "--chroma-snapshot",
        str(store),
        "--chroma-to",
        NEW,
        "--chroma-snapshot-filters",
        str(pytester.path / "filters.json"),
        "-v",
    )
    assert got.ret == 1
    got.stdout.fnmatch_lines(["*test_snapshot?user-filters-payments? FAILED*", "*now silently matches nothing*"])


# -- reading the filters, without a release ------------------------------------------------------------


def test_extracts_literal_filters_under_and_and_through_a_helper(tmp_path):
    (tmp_path / "search.py").write_text(APP)
    found, unread = user_filters.extract(tmp_path)
    assert [f.where for f in found] == [{"$and": [{"merchant": {"$contains": "a"}}, {"amount": {"$gte": 10.0}}]}]
    assert "through find()" in found[0].origin and found[0].collection is None
    assert unread == 1  # where={"merchant": who}: built at run time, counted, not guessed


def test_extracts_names_bound_to_literals_and_where_document(tmp_path):
    (tmp_path / "a.py").write_text(
        'cond = {"kind": {"$in": ["x", "y"]}}\n'
        "def f(c):\n    return c.query(query_embeddings=[[0.0]], where=cond, "
        'where_document={"$contains": "hi"})\n'
    )
    found, unread = user_filters.extract(tmp_path / "a.py")
    assert [(f.where, f.where_document) for f in found] == [({"kind": {"$in": ["x", "y"]}}, {"$contains": "hi"})]
    assert unread == 0


@pytest.mark.parametrize(
    "content,words",
    [
        ("not json", "not JSON"),
        ("{}", "needs where"),
        ("[1]", "must be an object"),
        ('[{"where": {"a": 1}, "limit": 3}]', "unknown field"),
        ('[{"where": [1]}]', "where must be an object"),
        ("[]", "expected a JSON list"),
    ],
)
def test_bad_filter_files_are_refused_in_one_line(tmp_path, content, words):
    path = tmp_path / "f.json"
    path.write_text(content)
    with pytest.raises(CompatError, match=words):
        user_filters.load(path)


def test_bad_filters_exit_2_before_any_copy(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("[1]")
    got = run_cli("validate", str(tmp_path), "--to", NEW, "--filters", str(path))
    assert got.returncode == 2 and "must be an object" in got.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    got = run_cli("validate", str(tmp_path), "--to", NEW, "--filters-from", str(tmp_path / "empty.py"))
    assert got.returncode == 2 and "no literal filter found" in got.stderr
