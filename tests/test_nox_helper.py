"""pytest_chroma_compat.usercode.nox: a release installed into a nox session with the harness's pin rules.

The argument checks use a recording stand-in for nox's Session (nox's object, not
chromadb's); the last test runs the project's own ``example-ledger`` sessions with
real nox, uv and chromadb releases, and sees examples/ledger_app break on 0.6.3 only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import envs, pins, releases
from pytest_chroma_compat.usercode.nox import install_chromadb

ROOT = Path(__file__).resolve().parents[1]


class SessionQuit(Exception):
    """What nox's session.error raises (its _SessionQuit), for the stand-in."""


class _Venv:
    def __init__(self, location: Path) -> None:
        self.location = str(location)


class RecordingSession:
    """Records what install_chromadb asks of nox; the session's Python is the one its pyvenv.cfg names."""

    def __init__(self, tmp_path: Path, python_version: str = "3.11.7", cfg_key: str = "version_info") -> None:
        venv = tmp_path / "venv"
        venv.mkdir(parents=True)
        (venv / "pyvenv.cfg").write_text(
            f"home = /usr/bin\ninclude-system-site-packages = false\n{cfg_key} = {python_version}\n"
        )
        self.virtualenv = _Venv(venv)
        self.python = None
        self.tmp = tmp_path / "session-tmp"
        self.installs: list[tuple[str, ...]] = []
        self.errors: list[str] = []
        self.logs: list[str] = []

    def create_tmp(self) -> str:
        self.tmp.mkdir(exist_ok=True)
        return str(self.tmp)

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def log(self, *args: object) -> None:
        self.logs.append(" ".join(map(str, args)))

    def error(self, *args: object) -> None:
        self.errors.append(" ".join(map(str, args)))
        raise SessionQuit(*args)


def _constraints(session: RecordingSession) -> list[str]:
    (args,) = session.installs
    assert args[0] == "-c", args
    return Path(args[1]).read_text().split()


def test_an_old_release_gets_the_same_pins_as_the_harness_environment(tmp_path):
    session = RecordingSession(tmp_path)
    assert install_chromadb(session, "0.4.24") == "0.4.24"
    (args,) = session.installs
    assert args[2:] == ("chromadb==0.4.24",)
    assert Path(args[1]).parent == session.tmp  # under session.create_tmp(), not the user's /tmp
    got = _constraints(session)
    assert {"numpy<2", "posthog<6"} <= set(got)
    # the environment the harness itself runs 0.4.24 in (cached) was built with exactly these constraints
    env = envs.ensure("0.4.24")
    assert sorted(c for p in env.pins for c in p["constraints"]) == sorted(got)
    assert "numpy-1" in session.logs[0] and "Python 3.11.7" in session.logs[0]


def test_a_release_without_rules_is_installed_alone(tmp_path):
    session = RecordingSession(tmp_path)
    assert install_chromadb(session, "1.5.9") == "1.5.9"
    assert session.installs == [("chromadb==1.5.9",)]
    assert not session.tmp.exists()


@pytest.mark.parametrize("spec", ["0.5", "first:0.6", "latest"])
def test_series_and_latest_resolve_to_the_release_installed(tmp_path, spec):
    session = RecordingSession(tmp_path)
    exact = install_chromadb(session, spec)
    assert exact == releases.resolve(spec)
    assert f"chromadb=={exact}" in session.installs[0]
    assert sorted(_constraints(session) if session.installs[0][0] == "-c" else []) == sorted(
        pins.install_args(exact, pins.for_version(exact))[1]
    )


@pytest.mark.parametrize(
    "spec, words",
    [
        ("9.9.9", "unknown chromadb release '9.9.9'"),
        ("0.9", "no chromadb release in series '0.9'"),
        ("0.3.1", "duckdb==0.5.1"),  # refused on Python 3.11, as envs.ensure refuses it
    ],
)
def test_a_release_that_cannot_be_installed_ends_the_session_in_one_line(tmp_path, spec, words):
    session = RecordingSession(tmp_path)
    with pytest.raises(SessionQuit):
        install_chromadb(session, spec)
    (line,) = session.errors
    assert words in line and "\n" not in line
    assert session.installs == []


def test_rules_follow_the_sessions_python_not_this_one(tmp_path):
    """0.3.1 is refused on 3.11 (this process), and only on >=3.11: a 3.10 session gets it with its pins."""
    session = RecordingSession(tmp_path, python_version="3.10.14", cfg_key="version")  # stdlib venv's key
    assert install_chromadb(session, "0.3.1") == "0.3.1"
    assert session.errors == []
    assert sorted(_constraints(session)) == ["duckdb<2", "posthog<6"]  # pydantic-1 starts at 0.3.3
    assert "Python 3.10.14" in session.logs[0]


def test_the_thin_client_package(tmp_path):
    session = RecordingSession(tmp_path)
    assert install_chromadb(session, "0.6.3", kind="client") == "0.6.3"
    (args,) = session.installs
    assert args[2:] == ("chromadb-client==0.6.3",)
    assert _constraints(session) == ["posthog<6"]  # numpy/fastapi rules are the full package's
    with pytest.raises(SessionQuit):
        install_chromadb(RecordingSession(tmp_path / "other"), "0.6.3", kind="server")
    with pytest.raises(SessionQuit):
        install_chromadb(RecordingSession(tmp_path / "old"), "0.4.24", kind="client")


def test_importing_the_helper_needs_neither_nox_nor_chromadb(tmp_path):
    code = (
        "import sys; sys.modules['nox'] = None; sys.modules['chromadb'] = None\n"
        "import pytest_chroma_compat, pytest_chroma_compat.usercode.nox as h\n"
        "print(h.plan('0.4.24')[1], 'chromadb' in sys.modules and sys.modules['chromadb'] is not None)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.4.24", "False"]


@pytest.mark.slow
def test_the_projects_own_noxfile_runs_the_ledger_example_under_two_releases(tmp_path):
    """Real nox (uv backend), real releases: examples/ledger_app passes on 1.5.9 and fails on 0.6.3
    in exactly its list_collections test. About 5 s per session with uv's cache warm."""
    sessions = ["example-ledger(chromadb='0.6.3')", "example-ledger(chromadb='1.5.9')"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NOX_", "VIRTUAL_ENV"))}
    env["TMPDIR"] = str(tmp_path)  # nox and uv's build locks stay out of /tmp
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(ROOT / "noxfile.py"),
            "--envdir",
            str(tmp_path),
            "--no-color",
            "-s",
            *sessions,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out  # one session fails
    assert "* example-ledger(chromadb='1.5.9'): success" in out, out[-3000:]
    assert "* example-ledger(chromadb='0.6.3'): failed" in out, out[-3000:]
    failed = re.findall(r"^FAILED (\S+)", out, re.M)
    assert failed == ["tests/test_ledger.py::test_reopen_ledger_lists_collections_as_objects"], out[-3000:]
    assert "1 failed, 6 passed" in out and "7 passed" in out
    assert "list_collections only returns collection names" in out  # 0.6's own error, not ours
    # the 0.6.3 session got its pin rule (posthog-5), and kept it through the example's own install
    installed = {}
    for python in tmp_path.glob("*/bin/python"):  # nox names session directories by a hash
        code = (
            "import importlib.metadata as m, importlib.util as u\n"
            "print(m.version('chromadb'), m.version('posthog') if u.find_spec('posthog') else 'none')"
        )
        got = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
        installed[got[0]] = got[1]
    assert sorted(installed) == ["0.6.3", "1.5.9"], installed
    assert int(installed["0.6.3"].split(".")[0]) < 6, installed
