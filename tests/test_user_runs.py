"""Issue 15: the user's own code under real releases: ``run``, ``bisect`` and ``pytest --chroma-under``.

The project under test is a small application written here (its code calls chromadb.PersistentClient
itself, as an application does) whose listing of collections breaks where list_collections() started
returning names (0.6.0, a documented change) and works again in 1.x. Its environments are removed at
the end: they are keyed by the project's path, which is new on every run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from pytest_chroma_compat.engine import project_envs
from pytest_chroma_compat.usercode import bisect, runs

APP = """
import chromadb
from chromadb.config import Settings


def open_store(path):
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def collection_names(path):
    client = open_store(path)
    client.get_or_create_collection("ledger_entries", embedding_function=None)
    return [c.name for c in client.list_collections()]


def entries_over(path, amount):
    col = open_store(path).get_or_create_collection("ledger_entries", embedding_function=None)
    ids = [f"LEDGER#{i:04d}#ENTRY#{i:05d}" for i in range(20)]
    col.upsert(ids=ids, embeddings=[[float(i), 1.0] for i in range(20)],
               metadatas=[{"amount": i * 10, "kind": "debit" if i % 2 else "credit"} for i in range(20)])
    got = col.get(where={"$and": [{"amount": {"$gte": amount}}, {"kind": "debit"}]})
    return sorted(got["ids"])
"""
TESTS = """
import os

from ledger import collection_names, entries_over


def test_collection_names(tmp_path):
    assert collection_names(tmp_path) == ["ledger_entries"]


def test_and_filter(tmp_path):
    assert len(entries_over(tmp_path, 100)) == 5


def test_no_secret_reaches_the_tests():
    assert os.environ.get("CHROMA_COMPAT_TEST_SECRET") in (None, "let-through")
"""


def make_project(root, requires: str = "chromadb"):
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f'''
        [project]
        name = "ledger-demo"
        version = "0.1"
        dependencies = ["{requires}"]
        [tool.setuptools]
        py-modules = ["ledger"]
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    ''')
    )
    (root / "ledger.py").write_text(APP)
    (root / "tests" / "test_ledger.py").write_text(TESTS)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("user-project") / "ledger-demo")
    yield root
    for env in project_envs.projects_dir().glob("ledger-demo-*"):
        shutil.rmtree(env, ignore_errors=True)
    from pytest_chroma_compat.usercode import run_history

    shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


def cli(*args: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_run_shows_each_release_and_the_failing_test_with_reports(project, tmp_path):
    proc = cli(
        "run",
        "--versions",
        "0.5.23,0.6.3,1.0.21,1.5.9",
        "-j",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
        "--markdown",
        str(tmp_path / "r.md"),
        "--",
        "pytest",
        cwd=project,
        env={"CHROMA_COMPAT_TEST_SECRET": "must-not-pass"},
    )
    assert proc.returncode == 1, proc.stderr
    results = {r["version"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert {v: r["status"] for v, r in results.items()} == {
        "0.5.23": "passed",
        "0.6.3": "failed",
        "1.0.21": "passed",
        "1.5.9": "passed",
    }
    assert results["0.6.3"]["failures"] == ["tests/test_ledger.py::test_collection_names"]
    assert results["0.6.3"]["counts"]["passed"] == 2 and results["1.5.9"]["counts"]["passed"] == 3
    assert "chromadb 0.6.3    FAILED   2 passed, 1 failed" in proc.stdout
    assert "    tests/test_ledger.py::test_collection_names" in proc.stdout
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "1")
    assert "| 0.6.3 | failed |" in (tmp_path / "r.md").read_text()
    assert proc.stderr.strip().splitlines()[-1] == (
        "chroma-compat run: 4 release(s): 3 passed, 1 failed (not passing: 0.6.3)"
    )


def test_pass_env_lets_one_variable_through(project):
    def secret_test(value: str, *extra: str) -> subprocess.CompletedProcess:
        return cli(
            "run",
            "--versions",
            "1.5.9",
            *extra,
            "--",
            "python",
            "-c",
            "import os, sys; sys.exit(0 if os.environ.get('CHROMA_COMPAT_TEST_SECRET') == 'x' else 3)",
            cwd=project,
            env={"CHROMA_COMPAT_TEST_SECRET": value},
        )

    assert secret_test("x").returncode == 1  # hermetic: the variable did not reach the command
    assert secret_test("x", "--pass-env", "CHROMA_COMPAT_TEST_SECRET").returncode == 0


@pytest.mark.slow
def test_a_release_the_project_excludes_is_reported_not_failed(tmp_path):
    root = make_project(tmp_path / "needs-one-x", requires="chromadb>=1.0")
    try:
        proc = cli("run", "--versions", "0.6.3,1.5.9", "--", "pytest", "-k", "and_filter", cwd=root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (
            "chromadb 0.6.3    excluded not run: the project requires chromadb>=1.0, which excludes 0.6.3"
            in proc.stdout
        )
    finally:
        for env in project_envs.projects_dir().glob("needs-one-x-*"):
            shutil.rmtree(env, ignore_errors=True)
        from pytest_chroma_compat.usercode import run_history

        shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


@pytest.mark.slow
def test_bisect_names_the_first_bad_release_and_the_documented_change(project, tmp_path):
    proc = cli(
        "bisect",
        "--good",
        "0.4.24",
        "--bad",
        "0.6.3",
        "--json",
        str(tmp_path / "b.json"),
        "--",
        "pytest",
        "tests/test_ledger.py::test_collection_names",
        cwd=project,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads((tmp_path / "b.json").read_text())
    steps = [(r["version"], r["status"], r["reason"][:200]) for r in found["runs"]]
    assert (found["last_good"], found["first_bad"]) == ("0.5.23", "0.6.0"), steps
    assert len(found["runs"]) <= 11  # both ends, at most 7 steps, the boundary pair again
    assert "list-collections-names" in [c["id"] for c in found["crossed"]]
    assert "first bad: chromadb 0.6.0; last good: chromadb 0.5.23" in proc.stdout


def test_bisect_skips_a_release_it_cannot_judge():
    def fake_run(version: str) -> runs.RunResult:  # the search alone: outcomes as releases gave them above
        status = "error" if version == "0.6.0" else ("failed" if version >= "0.6" else "passed")
        return runs.RunResult(version, status)

    found = bisect.search("0.5.20", "0.6.3", fake_run)
    assert found.first_bad == "0.6.1" and found.undecided == ["0.6.0"] and found.last_good == "0.5.23"
    assert [r.version for r in found.skipped] == ["0.6.0"]


@pytest.mark.slow
def test_chroma_under_gives_the_same_answer_from_inside_pytest(project):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--chroma-under",
            "0.5.23,0.6.3",
            "-k",
            "collection_names or and_filter",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=900,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "chromadb 0.5.23   passed   2 passed" in proc.stdout
    assert "chromadb 0.6.3    FAILED   1 passed, 1 failed" in proc.stdout
    assert "FAILED tests/test_ledger.py::test_collection_names@chromadb-0.6.3" in proc.stdout
    assert "1 of 2 release(s) passed; not passing: 0.6.3" in proc.stdout


@pytest.mark.slow
def test_a_warm_environment_is_reused_without_building(project):
    built = []
    first = project_envs.ensure("1.5.9", project, additions=["pytest"], note=built.append)
    again = project_envs.ensure("1.5.9", project, additions=["pytest"], note=built.append)
    assert first.path == again.path and len(built) <= 1  # built at most once (already, by the tests above)
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + "\n# edited\n")
    assert project_envs.ensure("1.5.9", project, additions=["pytest"]).path != first.path  # a new dependency state


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--versions", "1.5.9"], "give the command to run after --"),
        (["run", "--versions", "9.9.9", "--", "pytest"], "9.9.9"),
        (["bisect", "--good", "1.5.9", "--bad", "0.6.3", "--", "pytest"], "must be older than --bad"),
        (["run", "--versions", "1.5.9", "--project", "/nonexistent-dir", "--", "pytest"], "not a directory"),
        # a limit that never ends is no limit: refused like 0 and -1 (it was accepted, and a hang waited forever)
        (["run", "--versions", "1.5.9", "--timeout", "inf", "--", "pytest"], "--timeout must be a positive"),
        (["run", "--versions", "1.5.9", "--timeout", "nan", "--", "pytest"], "--timeout must be a positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(project, args, words):
    proc = cli(*args, cwd=project)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_release_run_takes_your_function_and_finds_your_project(project, tmp_path, monkeypatch):
    import os.path

    from pytest_chroma_compat.engine.client import Release

    monkeypatch.chdir(project / "tests")  # the project root is found upwards, as pytest finds its rootdir
    with Release("1.5.9") as release:
        assert release.run("ledger:collection_names", str(tmp_path / "store")) == ["ledger_entries"]
        assert release.run(os.path.join, "a", "b") == "a/b"  # a function object, positional arguments


def test_env_prune_removes_the_environments_of_a_project_that_is_gone(tmp_path):
    root = make_project(tmp_path / "short-lived")
    env = project_envs.ensure("1.5.9", root)
    shutil.rmtree(root)
    assert str(env.path) in project_envs.prune() and not env.path.exists()


@pytest.mark.slow
def test_the_ledger_example_breaks_at_the_documented_change(tmp_path):
    """examples/ledger_app, as a user runs it: four releases, then bisect to the first bad one."""
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "ledger_app"
    proc = cli(
        "run",
        "--versions",
        "0.5.23,0.6.3,1.0.21,1.5.9",
        "-j",
        "2",
        "--extras",
        "test",
        "--json",
        str(tmp_path / "r.json"),
        "--",
        "pytest",
        cwd=example,
    )
    assert proc.returncode == 1, proc.stderr
    results = {r["version"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert {v: r["status"] for v, r in results.items()} == {
        "0.5.23": "passed",
        "0.6.3": "failed",
        "1.0.21": "passed",
        "1.5.9": "passed",
    }
    assert results["0.6.3"]["failures"] == ["tests/test_ledger.py::test_reopen_ledger_lists_collections_as_objects"]
    found = cli(
        "bisect",
        "--good",
        "0.4.24",
        "--bad",
        "0.6.3",
        "--extras",
        "test",
        "--json",
        str(tmp_path / "b.json"),
        "--",
        "pytest",
        "tests/test_ledger.py::test_reopen_ledger_lists_collections_as_objects",
        cwd=example,
    )
    assert found.returncode == 0, found.stderr
    answer = json.loads((tmp_path / "b.json").read_text())
    assert (answer["first_bad"], answer["last_good"], len(answer["runs"]) <= 11) == ("0.6.0", "0.5.23", True)
    assert "list-collections-names" in [c["id"] for c in answer["crossed"]]
