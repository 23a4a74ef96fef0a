"""Issue 25's "done means": a published integration package's sdist, unpacked and unmodified, runs its own
unit tests under releases with ``--group test --no-sources``; ``bisect --first-good`` names where its suite
starts working. Slow: it downloads the sdist from the package index and builds environments for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import project_envs
from pytest_chroma_compat.usercode import run_history

pytestmark = pytest.mark.slow


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def langchain_chroma(tmp_path_factory):
    where = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "langchain-chroma",
            "-d",
            str(where),
        ],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    with tarfile.open(next(where.glob("langchain_chroma-*.tar.gz"))) as tar:
        tar.extractall(where, filter="data")
    root = next(p for p in where.iterdir() if p.is_dir())
    assert (root / "tests" / "unit_tests").is_dir() and "[dependency-groups]" in (root / "pyproject.toml").read_text()
    yield root
    for env in project_envs.projects_dir().glob(f"{root.name}-*"):  # this checkout's only (not another run's)
        manifest = env / project_envs.MANIFEST
        if manifest.is_file() and json.loads(manifest.read_text())["project"] == str(root.resolve()):
            shutil.rmtree(env, ignore_errors=True)
    shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=3600,
        env=dict(os.environ),
    )


def test_the_unmodified_sdist_runs_its_unit_tests_under_releases(langchain_chroma, tmp_path):
    before = digests(langchain_chroma)
    proc = cli(
        langchain_chroma,
        "run",
        "--versions",
        "1.1.0,1.5.9",
        "--group",
        "test",
        "--no-sources",
        "--json",
        str(tmp_path / "r.json"),
        "--",
        "pytest",
        "tests/unit_tests",
    )
    results = {r["version"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert results["1.5.9"]["status"] == "passed" and results["1.5.9"]["counts"]["passed"] > 20, proc.stdout
    assert results["1.1.0"]["status"] == "excluded"  # its declared chromadb>=1.3.5
    assert digests(langchain_chroma) == before  # nothing of the project was edited or added


def test_first_good_names_the_real_lower_bound(langchain_chroma, tmp_path):
    """Measured by hand: its suite works from chromadb 1.1.0 and cannot import under 1.0.x."""
    proc = cli(
        langchain_chroma,
        "bisect",
        "--first-good",
        "--bad",
        "1.0.21",
        "--good",
        "1.1.0",
        "--group",
        "test",
        "--no-sources",
        "--ignore-chromadb-bound",
        "--count-errors",
        "--json",
        str(tmp_path / "b.json"),
        "--",
        "pytest",
        "tests/unit_tests",
        "-q",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads((tmp_path / "b.json").read_text())
    assert (found["last_bad"], found["first_good"]) == ("1.0.21", "1.1.0")
