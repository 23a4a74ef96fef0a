"""Issue 25 part 1: project environments for projects as they are: PEP 735 groups, ``--no-sources``,
``--with``, ``--python`` and ``--ignore-chromadb-bound`` on ``run`` (and bisect, and ``--chroma-under``
with its ini twins).

The project here is shaped like the integration package of the issue: its test dependencies in
``[dependency-groups]`` (one group including another), a ``[tool.uv.sources]`` entry pointing into a
monorepo that is not there, and a chromadb pin inside an extra. One release (1.5.9); its environments
and kept runs are removed with the module.
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

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine import project_envs, project_options
from pytest_chroma_compat.usercode import run_history

VERSION = "1.5.9"
PYPROJECT = """
[project]
name = "grp-demo"
version = "0.1"
dependencies = ["chromadb", "iniconfig"]
[project.optional-dependencies]
old = ["chromadb<1.0"]
[dependency-groups]
helpers = ["six"]
test = ["pytest", {include-group = "helpers"}]
[tool.uv.sources]
iniconfig = { path = "../monorepo-that-is-not-here/iniconfig" }
[tool.setuptools]
py-modules = ["grpdemo"]
[tool.pytest.ini_options]
testpaths = ["tests"]
chroma_compat_under_group = ["test"]
chroma_compat_under_no_sources = true
"""
TESTS = """
import chromadb
import six  # from the included group "helpers"


def test_the_release_is_there():
    assert chromadb.__version__ == "1.5.9"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("opts") / "h25-grp-demo"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "grpdemo.py").write_text("X = 1\n")
    (root / "tests" / "test_grp.py").write_text(TESTS)
    yield root
    for env in project_envs.projects_dir().glob("h25-grp-demo-*"):
        shutil.rmtree(env, ignore_errors=True)
    shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


def cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=dict(os.environ),
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--group", "tset"],
            "--group tset: h25-grp-demo has no such dependency group (its [dependency-groups]: helpers, test)",
        ),
        (
            ["--extras", "tests"],
            "--extras tests: h25-grp-demo has no such extra (its extras: old); its "
            "[dependency-groups] are chosen with --group",
        ),
        (["--python", "3.99"], "--python 3.99: no Python 3.99 interpreter on this machine"),
        (["--python", "three"], "give a version as X.Y"),
        (["--with", "not a requirement!"], "--with 'not a requirement!' is not a requirement"),
    ],
)
def test_a_name_that_does_not_exist_is_exit_2_naming_what_does(project, args, words):
    before = set(project_envs.projects_dir().glob("h25-grp-demo-*"))
    for verb in (["run", "--versions", VERSION], ["bisect", "--good", "1.0.21", "--bad", VERSION]):
        proc = cli(*verb, *args, "--", "pytest", cwd=project)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert set(project_envs.projects_dir().glob("h25-grp-demo-*")) == before  # refused before any build


def test_groups_with_includes_and_no_sources_install_what_the_metadata_says(project, tmp_path):
    sourced = cli("run", "--versions", VERSION, "--group", "test", "--", "pytest", cwd=project)
    assert sourced.returncode == 1 and "Distribution not found" in sourced.stdout, sourced.stdout + sourced.stderr
    proc = cli(
        "run",
        "--versions",
        VERSION,
        "--group",
        "test",
        "--no-sources",
        "--json",
        str(tmp_path / "r.json"),
        "--",
        "pytest",
        cwd=project,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"chromadb {VERSION}    passed   1 passed" in proc.stdout
    extra = cli(
        "run", "--versions", VERSION, "--no-sources", "--with", "six", "--", "python", "-c", "import six", cwd=project
    )
    assert extra.returncode == 0, extra.stdout + extra.stderr
    without = cli("run", "--versions", VERSION, "--no-sources", "--", "python", "-c", "import six", cwd=project)
    assert without.returncode == 1, without.stdout  # six came from the group / --with, nowhere else


def test_a_chromadb_pin_inside_an_extra_is_excluded_and_the_bound_can_be_ignored(project, tmp_path):
    proc = cli("run", "--versions", VERSION, "--extras", "old", "--no-sources", "--", "python", "-c", "0", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"chromadb {VERSION}    excluded not run: the project requires chromadb<1.0 (extra old), which "
        f"excludes {VERSION}"
    ) in proc.stdout
    forced = cli(
        "run",
        "--versions",
        VERSION,
        "--extras",
        "old",
        "--no-sources",
        "--ignore-chromadb-bound",
        "--markdown",
        str(tmp_path / "r.md"),
        "--json",
        str(tmp_path / "r.json"),
        "--",
        "python",
        "-c",
        "import chromadb; assert chromadb.__version__ == '1.5.9'",
        cwd=project,
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "[bound ignored: the project requires chromadb<1.0 (extra old)" in forced.stdout
    assert json.loads((tmp_path / "r.json").read_text())["results"][0]["bound_ignored"]
    assert f"| {VERSION} | passed (bound ignored) |" in (tmp_path / "r.md").read_text()


def test_each_option_changes_the_cache_key(project):
    keys = set()
    for options in (
        project_options.ProjectOptions(),
        project_options.ProjectOptions.make(groups=["test"]),
        project_options.ProjectOptions.make(no_sources=True),
        project_options.ProjectOptions.make(python="3.12"),
        project_options.ProjectOptions.make(ignore_bound=True),
    ):
        keys.add(project_envs.dependency_digest(project, [], [], options.key()))
    keys.add(project_envs.dependency_digest(project, [], ["six"], "{}"))  # --with is an addition
    assert len(keys) == 6
    assert project_options.ProjectOptions().key() == "{}"  # environments built before the options keep their key


def test_a_project_needing_a_newer_python_is_exit_2_or_runs_with_python(tmp_path):
    root = tmp_path / "h25-py312-app"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""
        [project]
        name = "py312-app"
        version = "0.1"
        requires-python = ">=3.12"
        dependencies = ["chromadb"]
        [tool.setuptools]
        py-modules = ["app312"]
    """)
    )
    (root / "app312.py").write_text("type Vector = list[float]  # 3.12 syntax\n")
    try:
        if sys.version_info < (3, 12):
            proc = cli("run", "--versions", VERSION, "--", "python", "-c", "import app312", cwd=root)
            assert proc.returncode == 2 and "requires Python >=3.12" in proc.stderr and "--python" in proc.stderr
        try:
            found = project_options.find_python("3.12")
        except CompatError as exc:  # no 3.12 here: the same one line the CLI gives
            proc = cli("run", "--versions", VERSION, "--python", "3.12", "--", "python", "-c", "0", cwd=root)
            assert proc.returncode == 2 and str(exc) in proc.stderr
            return
        proc = cli(
            "run",
            "--versions",
            VERSION,
            "--python",
            "3.12",
            "--",
            "python",
            "-c",
            "import app312, sys; print(sys.version)",
            cwd=root,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run = run_history.runs(root)[0]
        assert found.version in (run / f"chromadb-{VERSION}.log").read_text()
    finally:
        for env in project_envs.projects_dir().glob("h25-py312-app-*"):
            shutil.rmtree(env, ignore_errors=True)
        shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


def test_chroma_under_takes_the_same_options_from_its_ini_twins(project):
    """pyproject's [tool.pytest.ini_options] names the group and --no-sources: nothing on the command line."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--chroma-under", VERSION],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"chromadb {VERSION}    passed   1 passed" in proc.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--chroma-under",
            VERSION,
            "--chroma-under-group",
            "nope",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    assert bad.returncode == 4 and "--group nope: h25-grp-demo has no such dependency group" in bad.stdout
