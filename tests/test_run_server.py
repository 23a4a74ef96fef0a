"""Issue 25 part 2: ``run --server`` starts each release's own server for the user's command and gives
it the address (and the token), so the suite's HttpClient tests run under every release; the server dies
with the run, a ``kill -9`` of chroma-compat included.

A tiny project whose one test talks to the server through ``chromadb.HttpClient`` built from
``CHROMA_HOST``/``CHROMA_PORT`` only (its token, under ``--server token``, comes from the client settings
the run sets). Releases 0.6.3 (token auth enforced) and 1.5.9; environments and kept runs removed with
the module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import project_envs
from pytest_chroma_compat.usercode import run_history

TEST = """
import os
import urllib.error
import urllib.request

import chromadb


def test_http_client_round_trip():
    client = chromadb.HttpClient(host=os.environ["CHROMA_HOST"], port=int(os.environ["CHROMA_PORT"]))
    col = client.get_or_create_collection("receipts", embedding_function=None)
    col.add(ids=["r1", "r2"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"k": 1}, {"k": 2}])
    assert col.get(where={"k": 2})["ids"] == ["r2"]
    assert os.environ["CHROMA_URL"] == f"http://{os.environ['CHROMA_HOST']}:{os.environ['CHROMA_PORT']}"


def test_the_token_is_needed_where_the_release_enforces_it():
    if not os.environ.get("CHROMA_TOKEN") or chromadb.__version__ >= "1":
        return
    url = os.environ["CHROMA_URL"] + "/api/v2/tenants/default_tenant/databases/default_database/collections"
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("answered without the token")
    except urllib.error.HTTPError as exc:
        assert exc.code in (401, 403)
    header = {os.environ["CHROMA_AUTH_HEADER"]: "Bearer " + os.environ["CHROMA_TOKEN"]}
    assert urllib.request.urlopen(urllib.request.Request(url, headers=header), timeout=10).status == 200
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("srv") / "h25-srv-demo"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "srv-demo"\nversion = "0.1"\ndependencies = '
        '["chromadb"]\n[tool.setuptools]\npy-modules = []\n'
    )
    (root / "tests" / "test_http.py").write_text(TEST)
    yield root
    for env in project_envs.projects_dir().glob("h25-srv-demo-*"):
        shutil.rmtree(env, ignore_errors=True)
    shutil.rmtree(run_history.root() / run_history.project_id(root), ignore_errors=True)


def cli(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=timeout,
        env=dict(os.environ),
    )


def test_the_http_tests_run_under_each_release_against_its_own_server(project):
    proc = cli(project, "run", "--versions", "0.6.3,1.5.9", "--server", "--", "pytest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chromadb 0.6.3    passed   2 passed" in proc.stdout and "chromadb 1.5.9    passed   2 passed" in proc.stdout
    without = cli(project, "run", "--versions", "1.5.9", "--", "pytest", "-k", "round_trip")
    assert without.returncode == 1 and "test_http_client_round_trip" in without.stdout  # no server, no address


def test_token_auth_reaches_the_command(project):
    proc = cli(project, "run", "--versions", "0.6.3", "--server", "token", "--", "pytest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chromadb 0.6.3    passed   2 passed" in proc.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--auth", "token"], "--auth token needs --server"),
        (["--server-port", "8000"], "--server-port needs --server"),
        (["--server", "--server-port", "8000", "-j", "2"], "--server-port runs one server at a time"),
    ],
)
def test_bad_server_options_are_exit_2(project, args, words):
    proc = cli(project, "run", "--versions", "1.5.9", *args, "--", "pytest")
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_server_dies_with_a_kill_9_of_chroma_compat(project, tmp_path):
    port_file = tmp_path / "port"
    script = (
        f"import os, time; open({str(port_file)!r} + '.tmp', 'w').write(os.environ['CHROMA_PORT']); "
        f"os.rename({str(port_file)!r} + '.tmp', {str(port_file)!r}); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "run",
            "--versions",
            "1.5.9",
            "--server",
            "--",
            "python",
            "-c",
            script,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=project,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 240
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert port_file.exists(), "the command never started"
        port = int(port_file.read_text())
        assert _answers(port)  # the release's server, up while the command runs
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _answers(port), f"the server on port {port} outlived a kill -9 of chroma-compat"
    finally:
        proc.kill()
        proc.wait()


def test_chroma_under_server_runs_the_session_beside_each_releases_server(project):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--chroma-under",
            "1.5.9",
            "--chroma-under-server",
            "plain",
            "-k",
            "round_trip",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chromadb 1.5.9    passed   1 passed" in proc.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--chroma-under",
            "1.5.9",
            "--chroma-under-server",
            "tls",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    assert bad.returncode == 4 and "--chroma-under-server='tls': one of plain, token" in bad.stdout
