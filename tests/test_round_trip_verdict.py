"""The round trip's verdict (issue 13), on real releases: one final line that says it and whether there is a
way back (the one-way door), a log-replay failure that a cleanly closed writer shows too reported under
in-place, query recall attributed by the target's own recall, the same evidence from `check`, a Python
`check_pair` and `replay` for one seed, and no `.hypothesis/` left in the directory a check runs from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.roundtrip import pair, profiles
from pytest_chroma_compat.roundtrip import paths as migrate
from pytest_chroma_compat.roundtrip.invariants import Outcome, check_query, observe, shared_low_recall
from pytest_chroma_compat.roundtrip.model import Op
from pytest_chroma_compat.roundtrip.strategies import Probes, Program

from .conftest import MID, NEW, OLD

V1 = "1.0.21"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command, from ``cwd`` (the tests' own run_cli has no cwd)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=600,
    )


def verdicts(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("chroma-compat: chromadb ")]


def failing(path: dict) -> list[tuple[str, object]]:
    return [(i["name"], i["evidence"]) for i in path["invariants"] if i["status"] in ("fail", "error")]


# -- the known case: 0.4.24 -> 1.0.21, all paths -------------------------------------------------------------


@pytest.fixture(scope="module")
def known_case(tmp_path_factory):
    """`check` from an empty directory, as a user runs it: every path of 0.4.24 -> 1.0.21."""
    cwd = tmp_path_factory.mktemp("empty-cwd")
    failures = tmp_path_factory.mktemp("failures")
    proc = cli(
        "check",
        "--from",
        OLD,
        "--to",
        V1,
        "--examples",
        "1",
        "--seed",
        "0",
        "--json",
        "--failures-dir",
        str(failures),
        cwd=cwd,
    )
    return proc, cwd


def test_check_ends_with_one_verdict_line_and_keeps_stdout_for_the_report(known_case):
    proc, _ = known_case
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is the report alone
    assert doc["safe"] is False
    lines = verdicts(proc.stderr)
    assert len(lines) == 1 and proc.stderr.strip().splitlines()[-1] == lines[0], proc.stderr
    # the failing check and its first evidence, and the known shape that found it (issue 23)
    assert lines[0].startswith(
        f"chroma-compat: chromadb {OLD} -> {V1}: NOT SAFE (in-place [known shape "
        f"'deleted-document']: writable: 'receipt-words': add with a document failed"
    )
    assert f"rollback to {OLD} after upgrading: not possible: sqlite3.OperationalError: no such column" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_log_replay_failure_a_clean_writer_shows_too_is_reported_under_in_place(known_case):
    """Measured: the deleted-document shape fails writes on 1.0.21 after unflushed-wal and after in-place alike;
    unflushed-wal says so instead of presenting a log-replay defect, and the pair stays NOT SAFE."""
    proc, _ = known_case
    paths = {p["path"]: p for p in json.loads(proc.stdout)["paths"]}
    wal, in_place = paths["unflushed-wal"], paths["in-place"]
    moved = [i for i in wal["invariants"] if i["name"] == "writable"][0]
    assert moved["status"] == "in-place" and "also with a cleanly closed writer" in moved["detail"]
    assert "Failed to apply logs to the metadata segment" in moved["detail"]
    assert wal["ok"] and wal["outcome"] == "in-place" and wal["clean_writer_case_file"]
    assert not in_place["ok"] and [n for n, _ in failing(in_place)] == ["writable"]
    assert any("an unflushed-wal example fails the same way (writable)" in n for n in in_place["notes"])
    assert Path(wal["clean_writer_case_file"]).exists()


def test_the_one_way_door_is_in_the_json_report(known_case):
    proc, _ = known_case
    doc = json.loads(proc.stdout)
    assert doc["rollback"]["possible"] is False and doc["rollback"]["release"] == OLD
    paths = {p["path"]: p for p in doc["paths"]}
    assert paths["in-place"]["rollback"].startswith("not possible: sqlite3.OperationalError")
    assert paths["export-import"]["rollback"].startswith("possible (export-import leaves the source store")


def test_check_leaves_no_hypothesis_directory_where_it_runs(known_case):
    _, cwd = known_case
    assert list(cwd.iterdir()) == []


@pytest.mark.slow
def test_without_in_place_the_unflushed_wal_report_keeps_the_failure_and_says_what_it_is(tmp_path):
    [rep] = pair.check_pair(OLD, V1, ["unflushed-wal"], examples=1, seed=0, failures_dir=tmp_path)
    assert not rep.ok and rep.failed[0].name == "writable"
    assert rep.failed[0].detail.endswith(pair.CLEAN_WRITER)
    assert any("it is not a log-replay defect" in n for n in rep.notes), rep.notes
    # where in-place ran and passed, it carries the failure (evidence and case file) and the pair is unsafe
    in_place = pair.PathReport(
        OLD, V1, "in-place", examples=1, outcomes=[Outcome("all", "pass", "1 example(s), every invariant held")]
    )
    pair._carry_clean_writer([in_place, rep])
    assert not in_place.ok and in_place.case_file == rep.clean_writer.case_file
    assert failing(in_place.to_dict()) == failing(rep.clean_writer.to_dict())
    assert "found by an unflushed-wal example" in in_place.failed[0].detail
    assert rep.ok and rep.outcome == "in-place"


# -- the one-way door ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_safe_upgrade_that_is_one_way_exits_1_only_with_require_rollback(tmp_path):
    """Measured: 0.4.24 -> 0.6.3 in place keeps every invariant, and 0.4.24 cannot open the store afterwards."""
    args = [
        "check",
        "--from",
        OLD,
        "--to",
        MID,
        "--path",
        "in-place",
        "--examples",
        "1",
        "--seed",
        "0",
        "--failures-dir",
        str(tmp_path),
    ]
    free = cli(*args)
    assert free.returncode == 0, free.stderr
    assert f"  rollback to {OLD} after upgrading: not possible: " in free.stdout
    [line] = verdicts(free.stderr)
    assert line.startswith(f"chroma-compat: chromadb {OLD} -> {MID}: SAFE (1 path(s), 1 example(s))")
    assert f"; rollback to {OLD} after upgrading: not possible" in line
    required = cli(*args, "--require-rollback")
    assert required.returncode == 1, required.stderr
    [line] = verdicts(required.stderr)
    assert line.startswith(
        f"chroma-compat: chromadb {OLD} -> {MID}: NOT SAFE (rollback to {OLD} after upgrading: not possible"
    )


def test_a_possible_rollback_passes_require_rollback(tmp_path):
    # --allow-pre-existing: 1.5.9's own list-metadata leak is pre-existing in it, not what this test is about
    proc = cli(
        "check",
        "--from",
        NEW,
        "--to",
        NEW,
        "--path",
        "in-place",
        "--examples",
        "1",
        "--seed",
        "0",
        "--require-rollback",
        "--allow-pre-existing",
        "--json",
        "--failures-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["safe"] and doc["rollback"] == {
        "release": NEW,
        "possible": True,
        "path": "in-place",
        "detail": "possible",
        "required": True,
    }
    assert verdicts(proc.stderr)[0].endswith(f"rollback to {NEW} after upgrading: possible")


@pytest.mark.slow
def test_matrix_ends_with_one_line_naming_unsafe_and_one_way_pairs(tmp_path):
    """Measured: 1.0.21 panics on a store 1.5.9 wrote to, so 1.0.21 -> 1.5.9 is one-way; 1.5.9 -> 1.0.21 fails."""
    md = tmp_path / "matrix.md"
    proc = cli(
        "matrix",
        "--versions",
        f"{V1},{NEW}",
        "--path",
        "in-place",
        "--examples",
        "1",
        "--seed",
        "0",
        "--markdown",
        str(md),
        "--failures-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"chroma-compat: matrix of 2 releases: 1 of 2 ordered pair(s) SAFE; NOT SAFE: {NEW}->{V1}; "
        f"no rollback after upgrading: {V1}->{NEW}"
    ), proc.stderr
    assert (
        "## rollback after upgrading" in md.read_text()
        and "not possible: pyo3_runtime.PanicException" in md.read_text()
    )


# -- query recall attribution ------------------------------------------------------------------------------------

# a graph of degree 2 searched with ef 1: every build of the index misses most true neighbours
SPARSE = {"hnsw:space": "l2", "hnsw:M": 2, "hnsw:construction_ef": 2, "hnsw:search_ef": 1}


def _sparse_case(old: str, new: str, meta: dict) -> pair.Case:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 128)).astype(np.float32)
    ops = [Op("create", "ccc", metadata=meta), Op("add", "ccc", [f"r{i}" for i in range(300)], vectors)]
    queries = [{"collection": "ccc", "vector": rng.standard_normal(128).astype(np.float32), "k": 10} for _ in range(20)]
    return pair.Case(old, new, "export-import", Program(ops), Probes([], queries))


def test_low_recall_the_target_shows_on_its_own_store_is_a_release_defect():
    """Measured (11 runs): 1.5.9 imports it with mean recall 0.18-0.26 and answers 0.14-0.21 on the same data it
    wrote itself, with other ids every time; equal evidence never matched, so this failed the upgrade."""
    case = _sparse_case(MID, NEW, SPARSE)
    with pair.PairRunner(MID, NEW) as r:
        rep = r.run_case(case, rollback=False)
    query = next(o for o in rep.outcomes if o.name == "query")
    assert query.status == "release-defect", query.detail
    assert f"chromadb {NEW} answers no better on a store it wrote itself (mean recall" in query.detail
    assert rep.ok, rep.first_failure()


def test_low_recall_is_the_upgrade_s_when_the_target_answers_better_on_its_own_store(tmp_path):
    """The same migrated answers against a target store built with default index settings (recall 1.0)."""
    sparse, exact = _sparse_case(MID, NEW, SPARSE), _sparse_case(MID, NEW, {"hnsw:space": "l2"})
    views = []
    with Release(NEW) as release:
        for name, case in (("sparse", sparse), ("exact", exact)):
            migrate.write(release, tmp_path / name, case.program.ops)
            with release.persistent(tmp_path / name) as client:
                views.append(observe(client, case.probes))
    model = sparse.program.model
    low, high = views
    assert not check_query(model, low, sparse.probes)[0] and check_query(model, high, sparse.probes)[0]
    assert shared_low_recall(model, low, high, sparse.probes) is None
    assert shared_low_recall(model, low, low, sparse.probes) is not None


# -- the same evidence for one seed ----------------------------------------------------------------------------


def test_a_seeded_run_uses_no_example_database():
    from hypothesis import Phase

    seeded, free = profiles.settings("ci", 3, seeded=True), profiles.settings("ci", 3)
    assert seeded.database is None and Phase.reuse not in seeded.phases
    assert free.database is not None and Phase.reuse in free.phases


@pytest.mark.slow
def test_one_seed_gives_one_failure_from_check_check_pair_and_replay(tmp_path):
    """A known shape fails 0.4.24 -> 1.0.21 in place: two CLI runs, a Python call and the replay of the
    saved case report the same example, the same failing invariant and the same evidence."""
    args = ["check", "--from", OLD, "--to", V1, "--path", "in-place", "--examples", "1", "--seed", "7", "--json"]
    runs = [json.loads(cli(*args, "--failures-dir", str(tmp_path / f"cli{i}")).stdout)["paths"][0] for i in (0, 1)]
    [rep] = pair.check_pair(OLD, V1, ["in-place"], examples=1, seed=7, failures_dir=tmp_path / "py")
    runs.append(rep.to_dict())
    again = pair.replay(Path(runs[0]["case_file"])).to_dict()
    assert failing(runs[0]) and failing(runs[0])[0][0] == "writable"
    for run in runs[1:] + [again]:
        assert failing(run) == failing(runs[0])
    assert len({r["falsifying_example"] for r in runs}) == 1
    assert len({Path(r["case_file"]).name for r in runs}) == 1


@pytest.mark.slow
def test_one_seed_draws_the_same_examples_in_the_cli_and_in_python(tmp_path):
    """Hypothesis proper, on a passing path: the fingerprints of the drawn examples, in order."""
    args = [
        "check",
        "--from",
        OLD,
        "--to",
        MID,
        "--path",
        "in-place",
        "--examples",
        "3",
        "--seed",
        "5",
        "--json",
        "--failures-dir",
        str(tmp_path),
    ]
    drawn = [json.loads(cli(*args).stdout)["paths"][0]["drawn"] for _ in range(2)]
    [rep] = pair.check_pair(OLD, MID, ["in-place"], examples=3, seed=5, failures_dir=tmp_path)
    assert rep.ok, rep.first_failure()
    assert len(drawn[0]) == 3 and drawn[0] == drawn[1] == rep.drawn


@pytest.mark.slow
def test_a_generated_failure_shrinks_to_the_same_case_in_the_cli_and_in_python(tmp_path):
    """1.5.9 -> 1.0.21 export-import passes the four known shapes and fails on a drawn list metadata value, which
    1.0.21 refuses on import (not 1.5.9 -> 0.6.3 since issue 23: 0.6.3 misses the float shape's values as 1.5.9
    re-rounded them). The CLI runs first: an example database would make the Python run start elsewhere."""
    args = [
        "check",
        "--from",
        NEW,
        "--to",
        V1,
        "--path",
        "export-import",
        "--examples",
        "2",
        "--seed",
        "0",
        "--json",
        "--failures-dir",
        str(tmp_path / "cli"),
    ]
    first = json.loads(cli(*args).stdout)["paths"][0]
    seen: list[tuple[str, int, int]] = []
    [rep] = pair.check_pair(
        NEW,
        V1,
        ["export-import"],
        examples=2,
        seed=0,
        failures_dir=tmp_path / "py",
        progress=lambda label, done, total: seen.append((label, done, total)),
    )
    second = rep.to_dict()
    assert failing(first) == failing(second) and failing(first)[0][0] == "migrate"
    assert "Expected metadata value" in [i for i in first["invariants"] if i["name"] == "migrate"][0]["detail"]
    for key in ("drawn", "falsifying_example", "examples", "shrink_steps"):
        assert first[key] == second[key], key
    assert Path(first["case_file"]).name == Path(second["case_file"]).name
    label = f"{NEW} -> {V1} export-import"
    assert (f"{label} known shapes", 4, 4) in seen and (label, 1, 2) in seen
    assert any(s[0] == f"{label} shrinking" and s[2] == 0 for s in seen)
    again = pair.replay(Path(first["case_file"])).to_dict()
    assert failing(again) == failing(first)


# -- Hypothesis's own files -------------------------------------------------------------------------------------


def test_hypothesis_storage_is_ours_only_around_our_runs(tmp_path):
    from hypothesis import configuration
    from hypothesis.internal.conjecture import providers

    from pytest_chroma_compat.engine import cache_dirs as paths

    before = getattr(configuration, "__hypothesis_home_directory")
    getter = providers._get_local_constants
    configuration.set_hypothesis_home_dir(tmp_path / "theirs")
    try:
        with profiles.isolated():
            assert configuration.storage_directory("x").path == paths.home() / "hypothesis-storage" / "x"
            assert len(providers._get_local_constants()) == 0
        assert configuration.storage_directory("x").path == tmp_path / "theirs" / "x"
        assert providers._get_local_constants is getter
    finally:
        configuration.set_hypothesis_home_dir(before)


pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_the_plugin_leaves_the_suite_s_own_hypothesis_storage_alone(pytester):
    """A suite that uses Hypothesis itself keeps its `.hypothesis` (and Hypothesis keeps writing there after our
    check ran); a suite that does not gets none from our check."""
    pytester.makepyfile(
        test_mine="""
        from pathlib import Path

        from hypothesis import configuration

        from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place  # noqa: F401


        def test_zz_hypothesis_storage_is_the_suite_s_again():
            assert configuration.storage_directory("x").path == Path.cwd() / ".hypothesis" / "x"
    """
    )
    result = pytester.runpytest_subprocess(
        "--chroma-from", NEW, "--chroma-to", NEW, "--chroma-examples", "1", "--chroma-seed", "0", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
    assert not (pytester.path / ".hypothesis").exists()
