"""Issue 25 part 3: runs are kept, not overwritten (``runs/<project-id>/<timestamp>-<pid>/``), listed by
``run --list`` and pruned by ``env prune --older-than``; failures are runnable node ids (a collection
error too, and under ``--chroma-under``); ``pytest --chroma-scan`` collects the scan alone.

A tiny project with one passing test, one failing test and one module that cannot be imported, under
1.5.9, in a private CHROMA_COMPAT_HOME removed with the module (nothing piles up in the user's cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import leftovers
from pytest_chroma_compat.usercode import run_history

VERSION = "1.5.9"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("kept") / "kept-demo"
    (root / "tests" / "sub").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""
        [project]
        name = "kept-demo"
        version = "0.1"
        dependencies = ["chromadb"]
        [tool.setuptools]
        py-modules = []
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """)
    )
    (root / "tests" / "test_ok.py").write_text(
        "def test_passes():\n    pass\n\n\nclass TestGroup:\n    def test_fails(self):\n        assert 0\n"
    )
    (root / "tests" / "sub" / "test_broken.py").write_text("from chromadb import NoSuchName\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHROMA_COMPAT_HOME", str(root.parent / "compat-home"))
        yield root


def cli(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=timeout,
        env=dict(os.environ),
    )


def test_each_run_is_kept_listed_and_failures_are_node_ids(project):
    first = cli(project, "run", "--versions", VERSION, "--", "pytest", "--continue-on-collection-errors")
    second = cli(project, "run", "--versions", VERSION, "--", "pytest", "tests/test_ok.py")
    assert first.returncode == 1 and second.returncode == 1, first.stdout + first.stderr
    # the failing test and the module that cannot be collected, as ids pytest runs
    assert "    tests/test_ok.py::TestGroup::test_fails" in first.stdout
    assert "    tests/sub/test_broken.py\n" in first.stdout and "tests.sub" not in first.stdout
    kept = run_history.runs(project)
    assert len(kept) == 2 and kept[0].parent.name == run_history.project_id(project)
    newest, oldest = kept
    assert (newest / f"chromadb-{VERSION}.log").read_text().startswith("$ pytest tests/test_ok.py")
    assert "test_broken" in (oldest / f"chromadb-{VERSION}.log").read_text()  # not overwritten by the second
    assert json.loads((oldest / "run.json").read_text())["results"][0]["failures"] == [
        "tests/sub/test_broken.py",
        "tests/test_ok.py::TestGroup::test_fails",
    ]
    listed = cli(project, "run", "--list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and str(newest) in lines[0] and str(oldest) in lines[1] and "1 failed" in lines[0]


def test_the_project_id_tells_checkouts_with_the_same_name_apart(tmp_path):
    (tmp_path / "a" / "app").mkdir(parents=True)
    (tmp_path / "b" / "app").mkdir(parents=True)
    ids = {run_history.project_id(tmp_path / d / "app") for d in ("a", "b")}
    assert len(ids) == 2 and all(i.startswith("app-") for i in ids)
    assert leftovers.kind_of("20261207T233600.123Z-4242").prefix == "run-kept"


def test_env_prune_older_than_removes_old_runs_only(project):
    old = run_history.start(project, ["pytest"], "run")
    fresh = run_history.start(project, ["pytest"], "run")
    live = run_history.root() / run_history.project_id(project) / f"20200101T000000.000Z-{os.getpid()}"
    live.mkdir()  # an old name, but a live owner and no results: a run in progress
    run_history.finish(old, [])
    run_history.finish(fresh, [])
    past = time.time() - 3 * 86400
    for path in (old / "run.json", old, live):
        os.utime(path, (past, past))
    quiet = cli(project, "env", "prune")
    assert quiet.returncode == 0 and old.exists()  # without --older-than a kept run stays
    proc = cli(project, "env", "prune", "--older-than", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"removed {old}" in proc.stdout and not old.exists()
    assert fresh.exists() and live.exists()
    live.rmdir()


def test_chroma_under_failures_are_runnable_node_ids(project):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--chroma-under",
            VERSION,
            "--continue-on-collection-errors",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"FAILED tests/test_ok.py::TestGroup::test_fails@chromadb-{VERSION}" in proc.stdout
    assert f"FAILED tests/sub/test_broken.py@chromadb-{VERSION}" in proc.stdout
    assert "(logs: " in proc.stdout and run_history.read(run_history.runs(project)[0])["what"] == "chroma-under"


def test_chroma_scan_does_not_collect_the_projects_own_tests(project):
    (project / "app.py").write_text("import chromadb\nclient = chromadb.Client()\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "--chroma-scan",
            "app.py",
            "--chroma-from",
            "1.0.21",
            "--chroma-to",
            VERSION,
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )
    assert "test_scan[" in proc.stdout and "test_ok.py" not in proc.stdout, proc.stdout + proc.stderr
    named = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "tests/test_ok.py",
            "--chroma-scan",
            "app.py",
            "--chroma-from",
            "1.0.21",
            "--chroma-to",
            VERSION,
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )
    assert "tests/test_ok.py::test_passes" in named.stdout  # paths the user names are still collected
