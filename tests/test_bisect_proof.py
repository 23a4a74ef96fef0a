"""Issue 23 part 5, "bisect proves its answer": both endpoints run first, the boundary pair runs twice,
``--first-good`` searches for a project's lower bound, and ``--count-errors`` decides what a test
module that cannot be imported means. Real releases, real commands (cheap ones: ``python -c``).

The releases are 1.0.21, 1.1.0 and 1.5.9. ``chromadb.Search`` (the Search API) first appears in 1.1.0:
checked by hand in the wheels, ``chromadb/__init__.py`` of 1.0.21 (the last 1.0 release, the one before
1.1.0) has no ``Search``; 1.1.0's imports it from ``chromadb.execution.expression.plan`` and lists it in
``__all__``. The project lives in a CHROMA_COMPAT_HOME of its own, apart from the user's cache, that is kept
between runs (conftest's ``SUITE_CACHE``) like the release environments: its three project environments (1.0.21, 1.1.0,
1.5.9) are built by the first run and reused, as `chroma-compat run` and `bisect` reuse them for a user, instead
of three installs on every run. What bisect answers does not depend on whether they were built or reused; the
runs each session keeps (``runs/``) are removed with the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_chroma_compat.usercode import bisect as release_bisect
from pytest_chroma_compat.usercode import run_history
from pytest_chroma_compat.usercode import runs as user_runs

from .conftest import kept_project

OLD, FIRST_WITH_SEARCH, NEW = "1.0.21", "1.1.0", "1.5.9"


PROJECT_FILES = {
    "pyproject.toml": textwrap.dedent("""
        [project]
        name = "search-demo"
        version = "0.1"
        dependencies = ["chromadb"]
        [tool.setuptools]
        py-modules = ["searchdemo"]
    """),
    "searchdemo.py": "def hello():\n    return 'hi'\n",
    "tests/test_search.py": textwrap.dedent("""
        from chromadb import Search  # a name that first appears in chromadb 1.1.0


        def test_the_search_api_is_there():
            assert callable(Search)
    """),
}


@pytest.fixture(scope="module")
def project():
    root = kept_project("bisect-proof/search-demo", PROJECT_FILES)
    home = root.parent / "compat-home"  # its own: neither the user's cache nor another module's
    kept = home / "runs" / run_history.project_id(root)
    before = set(kept.glob("*"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHROMA_COMPAT_HOME", str(home))
        yield root
    for run in set(kept.glob("*")) - before:  # the runs this module kept (another session's are its own)
        shutil.rmtree(run, ignore_errors=True)


def bisect(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", "bisect", *args],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=900,
        env=dict(os.environ),
    )


def no_answer(proc: subprocess.CompletedProcess) -> str:
    """exit 2 and one line on stderr: the reason."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert lines[-1].startswith("chroma-compat: error: bisect has no answer: "), lines
    assert "first bad:" not in proc.stdout and "first good:" not in proc.stdout
    return lines[-1]


def test_first_good_names_the_release_that_brought_the_name(project, tmp_path):
    """The cheap form: a command whose import fails is a plain failure (exit 1), no flag needed."""
    proc = bisect(
        project,
        "--first-good",
        "--bad",
        OLD,
        "--good",
        NEW,
        "--versions",
        FIRST_WITH_SEARCH,
        "--json",
        str(tmp_path / "b.json"),
        "--",
        "python",
        "-c",
        "from chromadb import Search",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"first good: chromadb {FIRST_WITH_SEARCH}; last bad: chromadb {OLD}" in proc.stdout
    found = json.loads((tmp_path / "b.json").read_text())
    runs = [(r["version"], r["status"]) for r in found["runs"]]
    # both ends, the middle, then the boundary pair once more
    assert runs == [
        (OLD, "failed"),
        (NEW, "passed"),
        (FIRST_WITH_SEARCH, "passed"),
        (OLD, "failed"),
        (FIRST_WITH_SEARCH, "passed"),
    ], runs
    assert "ImportError" in found["runs"][0]["reason"] and "Search" in found["runs"][0]["reason"]


@pytest.mark.slow
def test_first_good_counts_a_test_module_that_cannot_import_the_name(project, tmp_path):
    proc = bisect(
        project,
        "--first-good",
        "--bad",
        OLD,
        "--good",
        NEW,
        "--versions",
        FIRST_WITH_SEARCH,
        "--count-errors",
        "--json",
        str(tmp_path / "b.json"),
        "--",
        "pytest",
        "tests/test_search.py",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"first good: chromadb {FIRST_WITH_SEARCH}; last bad: chromadb {OLD}" in proc.stdout
    assert f"collection/import errors counted as failures (--count-errors): {OLD}" in proc.stdout
    found = json.loads((tmp_path / "b.json").read_text())
    assert (found["direction"], found["answer"], found["first_good"], found["last_bad"]) == (
        "first-good",
        "found",
        FIRST_WITH_SEARCH,
        OLD,
    )
    runs = [(r["version"], r["status"]) for r in found["runs"]]
    assert runs == [
        (OLD, "error"),
        (NEW, "passed"),
        (FIRST_WITH_SEARCH, "passed"),
        (OLD, "error"),
        (FIRST_WITH_SEARCH, "passed"),
    ], runs


@pytest.mark.slow
def test_a_collection_error_is_skipped_unless_counted_and_the_report_says_so(project):
    line = no_answer(
        bisect(
            project,
            "--first-good",
            "--bad",
            OLD,
            "--good",
            NEW,
            "--versions",
            FIRST_WITH_SEARCH,
            "--",
            "pytest",
            "tests/test_search.py",
        )
    )
    assert f"under --bad {OLD} it could not be judged (exit 2): could not collect" in line
    assert "pass --count-errors to count a collection/import error as a failure" in line


@pytest.mark.parametrize(
    "name, command, words",
    [
        (
            "both endpoints fail",
            "import chromadb, sys; sys.exit(0 if chromadb.__version__.startswith('0.') else 1)",
            f"under --good {OLD} the command failed (exit 1",
        ),
        ("both endpoints pass", "import chromadb", f"under --bad {NEW} it passed"),
        (
            "always failing",
            "raise SystemExit('always broken')",
            f"under --good {OLD} the command failed (exit 1): always broken; under --bad",
        ),
    ],
)
def test_endpoints_that_do_not_behave_as_named_are_exit_2_with_both_outcomes(project, name, command, words):
    line = no_answer(
        bisect(project, "--good", OLD, "--bad", NEW, "--versions", FIRST_WITH_SEARCH, "--", "python", "-c", command)
    )
    assert f"--good {OLD} must pass and --bad {NEW} must fail, but under --good {OLD}" in line
    assert words in line, line


def test_a_flaky_command_is_exit_2_not_a_release(project, tmp_path):
    """Passes on odd-numbered runs, fails on even ones: the ends look right (run 1 passes under --good,
    run 2 fails under --bad), the middle passes (run 3), and its second run (4) fails."""
    counter = tmp_path / "runs"
    command = (
        f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); sys.exit(n % 2 == 0)"
    )
    line = no_answer(
        bisect(project, "--good", OLD, "--bad", NEW, "--versions", FIRST_WITH_SEARCH, "--", "python", "-c", command)
    )
    assert f"the command is flaky: under chromadb {FIRST_WITH_SEARCH} it passed on a first run and failed" in line
    assert counter.read_text() == "4"


def test_the_search_checks_both_ends_before_anything_else():
    """The search alone (no releases): a --good that fails stops it after exactly the two endpoint runs."""
    ran = []

    def always_fails(version: str) -> user_runs.RunResult:
        ran.append(version)
        return user_runs.RunResult(version, "failed", 1, reason="boom")

    found = release_bisect.search("0.5.20", "0.6.3", always_fails)
    assert (found.answer, ran) == ("endpoints", ["0.5.20", "0.6.3"])
    assert "under --good 0.5.20 the command failed (exit 1): boom; under --bad 0.6.3 it failed" in found.reason


def test_a_collection_error_counts_only_when_asked():
    """The search alone: the same runs, skipped by default, counted as failures with count_errors."""

    def outcome(version: str) -> user_runs.RunResult:
        if version < "0.6":
            return user_runs.RunResult(version, "passed", 0)
        return user_runs.RunResult(version, "error", 2, reason="could not collect", cannot_collect=True)

    skipped = release_bisect.search("0.5.23", "0.6.3", outcome, versions=["0.6.0", "0.6.1"])
    assert skipped.answer == "endpoints" and "pass --count-errors" in skipped.reason
    counted = release_bisect.search("0.5.23", "0.6.3", outcome, versions=["0.6.0", "0.6.1"], count_errors=True)
    assert (counted.answer, counted.first_bad, counted.last_good) == ("found", "0.6.0", "0.5.23")
    assert counted.errors_note().startswith("collection/import errors counted as failures (--count-errors)")
