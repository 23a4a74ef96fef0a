"""The plugin's twins of validate's --data-budget and --refuse-downgrade, on a store 0.6.3 wrote.

``--chroma-snapshot-data-budget`` (ini ``chroma_compat_snapshot_data_budget``) is checked at
start-up (plugin/options.py: one usage error, exit 4, before anything is copied) and reaches the
data checks; ``--chroma-snapshot-refuse-downgrade`` makes a store newer than the target not safe
on the rule alone (its measured checks would pass), as ``validate --refuse-downgrade`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chroma_compat.engine.client import Release

pytest_plugins = ["pytester"]

WRITER = "0.6.3"
OLDER = "0.5.23"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("twins") / "store"
    with Release(WRITER) as release, release.persistent(path) as client:
        col = client.create_collection("notes")
        col.add(
            ids=[f"n{i}" for i in range(10)],
            embeddings=[[float(i), 1.0, 0.5] for i in range(10)],
            documents=[f"note {i}" for i in range(10)],
            metadatas=[{"k": i, "x": i / 3} for i in range(10)],
        )
    return path


def test_twins_are_checked_at_start_up(pytester, tmp_path):
    """A bad value is one usage error (exit 4) before any store is read or release built."""
    for ini, args, words in (
        (
            "chroma_compat_snapshot_data_budget = lots",
            (),
            "chroma_compat_snapshot_data_budget (ini)='lots' is not accepted: a whole number from 0 to",
        ),
        ("", ("--chroma-snapshot-data-budget=-1",), "--chroma-snapshot-data-budget='-1' is not accepted"),
        (
            "chroma_compat_snapshot_refuse_downgrade = maybe",
            (),
            "chroma_compat_snapshot_refuse_downgrade (ini)='maybe' is not accepted: true or false",
        ),
    ):
        cfg = pytester.makeini(f"[pytest]\n{ini}\n")
        got = pytester.runpytest_subprocess(
            "-c", str(cfg), f"--chroma-snapshot={tmp_path}", "--chroma-to", WRITER, *args
        )
        assert got.ret == 4, (ini, args, got.stdout.str())
        err = got.stderr.str()
        # pytest 9.2 checks a bool ini value itself, at start-up too (9.0 left it to us): either is one usage error
        assert words in err or ("'maybe'" in words and "invalid truth value 'maybe'" in err), err


@pytest.mark.slow
def test_data_budget_twin_reaches_the_data_checks(store, pytester):
    cfg = pytester.makeini("[pytest]\nchroma_compat_snapshot_data_budget = 0\n")
    got = pytester.runpytest_subprocess(
        "-c", str(cfg), f"--chroma-snapshot={store}", "--chroma-to", WRITER, "-v", "-rs"
    )
    assert got.ret == 0, got.stdout.str()
    # budget 0 and a same-release pair: no contract crossed, so no data check runs, and the run says so
    got.stdout.fnmatch_lines(["*test_snapshot?data-checks-notes? SKIPPED*", "*data checks off (--data-budget 0)*"])
    assert "data:float-metadata-exact" not in got.stdout.str()


@pytest.mark.slow
def test_refuse_downgrade_twin_makes_the_rule_decide(store, pytester):
    cfg = pytester.makeini("[pytest]\n")
    got = pytester.runpytest_subprocess(
        "-c",
        str(cfg),
        f"--chroma-snapshot={store}",
        "--chroma-to",
        OLDER,
        "--chroma-from",
        WRITER,
        "-v",
        "--chroma-snapshot-data-budget",
        "4",
        "--chroma-snapshot-refuse-downgrade",
    )
    assert got.ret == 1, got.stdout.str()
    got.stdout.fnmatch_lines(["*test_snapshot?rollback? FAILED*", "*not safe on the rule alone (--refuse-downgrade)*"])
