"""Shared fixtures: real releases only. Environments live in the normal cache
(so CI reuses them between runs); tests that break environments on purpose
get a private CHROMA_COMPAT_HOME."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .s3_server import moto_server, s3  # noqa: F401  (shared fixtures: a real S3 API on 127.0.0.1)
from .trust import canary  # noqa: F401  (a shared fixture of the test_trust_* modules)

# The releases the default run exercises: one 0.4.x that needs a pin, one 0.6, one 1.x.
OLD, MID, NEW = "0.4.24", "0.6.3", "1.5.9"


_FAILED: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _FAILED.add(report.nodeid.split("::")[-1])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run with failures keeps the failed tests' own directories, not the stores and release
    environments module fixtures built: pytest keeps a failing run's whole basetemp (three runs
    deep), and one failing slow run left 7 GB there. A passing run's basetemp pytest removes."""
    config = session.config
    factory = getattr(config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None)
    if (
        base is None
        or not base.is_dir()
        or (factory._given_basetemp is not None and not hasattr(config, "workerinput"))
    ):
        return  # a --basetemp the user chose is theirs (xdist's workers get one from their controller)
    keep = tuple(re.sub(r"[\W]", "_", name)[:30] for name in _FAILED)
    for child in base.iterdir():
        if child.is_dir() and not child.name.startswith("popen-gw") and not (keep and child.name.startswith(keep)):
            shutil.rmtree(child, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def private_scratch(tmp_path_factory):
    """The built releases stay shared in the user's cache (building them takes minutes), but what a
    run makes and removes (private copies, workers' HOMEs, journals, and whatever a failing or killed
    test leaves) goes to a folder of this session, removed at its end: the suite used to leave 9
    ``migrate-*`` copies (11 MB) in the user's cache on every run. A test with its own
    CHROMA_COMPAT_HOME keeps its scratch inside that home (paths.scratch_root)."""
    before = os.environ.get("CHROMA_COMPAT_SCRATCH_HOME")
    root = tmp_path_factory.mktemp("compat-scratch")
    os.environ["CHROMA_COMPAT_SCRATCH_HOME"] = str(root)
    yield root
    if before is None:
        os.environ.pop("CHROMA_COMPAT_SCRATCH_HOME", None)
    else:
        os.environ["CHROMA_COMPAT_SCRATCH_HOME"] = before
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def fresh_example_database(tmp_path_factory):
    """Replayed failures from other runs (a nox session's findings) must not decide these tests;
    set in os.environ so pytester's subprocesses inherit it."""
    os.environ["CHROMA_COMPAT_EXAMPLES"] = str(tmp_path_factory.mktemp("hypothesis-examples"))
    yield
    os.environ.pop("CHROMA_COMPAT_EXAMPLES", None)


@pytest.fixture
def private_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "compat-home"
    monkeypatch.setenv("CHROMA_COMPAT_HOME", str(home))
    return home


#: Projects of the tests that run a user's command under releases (``run``, ``bisect``), kept between runs like
#: the release environments: a project environment is keyed by its project's path and dependency files, so a
#: project at the same path with the same files reuses the environments an earlier run built, instead of
#: installing chromadb afresh on every run. Under the project's cache (which CI keeps between runs), in a folder
#: of its own; CHROMA_COMPAT_SUITE_CACHE moves it.
def _suite_cache() -> Path:
    from pytest_chroma_compat.engine import cache_dirs

    return Path(os.environ.get("CHROMA_COMPAT_SUITE_CACHE") or cache_dirs.home() / "test-projects")


SUITE_CACHE = _suite_cache()


def kept_project(name: str, files: dict[str, str]) -> Path:
    """``SUITE_CACHE/name`` holding exactly ``files`` (path -> text); a file is rewritten only when it differs."""
    root = SUITE_CACHE / name
    for rel, text in files.items():
        path = root / rel
        if not path.is_file() or path.read_text("utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
    return root


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
