"""``migrate`` (and ``serve``, and validate's report) under kills, concurrent runs and auth faults.

Everything is real: stores written by a release, servers started by the project's own launcher
(``servers.serve``, token auth as the era documents it), ``kill -9`` and SIGTERM sent to the real
command, two real commands racing for one target. What must hold (issue 24):
- a migrate killed at any point resumes with the *same command* (no flag added), to a directory or
  to a server, ending with exact counts and verified digests;
- auth refused, credentials in a URL, a target another migrate holds: exit 2, one line, the fix named;
- no traceback from a thread on SIGTERM, nor from the reaper when a server is killed under ``serve``;
- the validate report's "Reproduce" command keeps ``--endpoint-url`` (without its credentials).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.servers import launcher
from pytest_chroma_compat.transfer import journal, lock

from .conftest import MID

N = 2000
COMMAND = [sys.executable, "-m", "pytest_chroma_compat", "migrate"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A 0.6.3 directory: one collection big enough to be killed in the middle of, one small."""
    path = tmp_path_factory.mktemp("trust-migrate") / "store"
    rng = np.random.default_rng(7)
    with Release(MID) as rel:
        client = rel.persistent(path)
        big = client.create_collection("receipt_lines", metadata={"hnsw:space": "cosine"})
        for start in range(0, N, 500):
            ids = range(start, start + 500)
            big.add(
                ids=[f"line-{i:05d}" for i in ids],
                embeddings=rng.random((500, 8)),
                documents=[f"line {i}" for i in ids],
                metadatas=[{"n": i, "f": i / 7} for i in ids],
            )
        client.create_collection("notes").add(ids=["a", "b"], embeddings=[[1.0] * 8, [0.5] * 8], documents=["x", "y"])
        client.close()
    return path


@pytest.fixture(scope="module")
def token_server():
    with launcher.serve(MID, auth="token") as server:
        assert server.auth_enforced, "0.6.3 enforces token auth (servers/launcher.py measures it)"
        yield server


def _copied(path: Path, label: str = "receipt_lines") -> int:
    try:
        return int(json.loads(path.read_text())["collections"].get(label, {}).get("copied", 0))
    except (OSError, ValueError, KeyError):
        return 0


def _all_done(path: Path) -> bool:
    try:
        entries = json.loads(path.read_text())["collections"]
    except (OSError, ValueError, KeyError):
        return False
    return len(entries) == 2 and all(e.get("done") for e in entries.values())


def _kill_when(
    cmd: list[str], ready: Callable[[], bool], sig: int = signal.SIGKILL, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``cmd``, send ``sig`` as soon as ``ready()``; the run must still be working by then."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 240
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before the kill point: {err[-800:]}")
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _run(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def _one_line_exit_2(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and lines[-1].startswith("chroma-compat: error:"), proc.stderr
    return lines[-1]


# -- 3. interrupted work resumes with the same command -------------------------------------------------------


@pytest.mark.slow
def test_a_migrate_killed_at_any_point_resumes_into_a_directory_with_the_same_command(store, tmp_path):
    target = tmp_path / "new-store"
    jpath = journal.location(str(store.resolve()), str(target.resolve()))
    cmd = [*COMMAND, str(store), str(target), "--batch-size", "50", "--verify"]  # no --target-version
    staging = tmp_path / ".new-store.migrate-init"
    # killed while the release creates the new store's schema (15 migrations for 0.6.3), then as soon
    # as the target store exists (nothing copied yet), then in the middle of the copy
    for ready in (lambda: (staging / "chroma.sqlite3").exists(), lambda: (target / "chroma.sqlite3").exists()):
        assert _kill_when(cmd, ready).returncode == -signal.SIGKILL
    second = _kill_when(cmd, lambda: _copied(jpath) >= 300)  # the same command, killed mid-copy
    assert second.returncode == -signal.SIGKILL and 0 < _copied(jpath) < N
    third = _kill_when(cmd, lambda: _all_done(jpath))  # every batch copied: killed during --verify
    assert third.returncode == -signal.SIGKILL
    done = _run(cmd)
    assert done.returncode == 0, done.stderr
    assert "resuming the run begun" in done.stderr and "interrupted run of this command" in done.stderr
    assert f"receipt_lines: verified, {N} records" in done.stdout and "notes: verified, 2 records" in done.stdout
    assert not jpath.exists() and not staging.exists()
    with Release(MID) as rel:  # read back by the release itself: exact counts, nothing doubled
        client = rel.persistent(target)
        assert client.get_collection("receipt_lines").count() == N and client.get_collection("notes").count() == 2


@pytest.mark.slow
def test_a_migrate_killed_mid_copy_resumes_into_a_token_server_with_the_same_command(store, token_server):
    jpath = journal.location(str(store.resolve()), f"{token_server.host}:{token_server.port}")
    cmd = [
        *COMMAND,
        str(store),
        token_server.url,
        "--batch-size",
        "50",
        "--verify",
        "--target-header",
        "Authorization: Bearer $TRUST_TOKEN",
    ]
    env = {"TRUST_TOKEN": token_server.token}
    killed = _kill_when(cmd, lambda: _copied(jpath) >= 300, env=env)
    assert killed.returncode == -signal.SIGKILL
    done = _run(cmd, env=env)
    assert done.returncode == 0, done.stderr
    assert "resuming the run begun" in done.stderr and f"receipt_lines: verified, {N} records" in done.stdout
    assert token_server.token not in done.stderr + done.stdout
    with Release(MID) as rel:
        assert (
            rel.http(token_server.host, token_server.port, headers=token_server.headers)
            .get_collection("receipt_lines")
            .count()
            == N
        )


@pytest.fixture(scope="module")
def archive(store, tmp_path_factory) -> Path:
    import tarfile

    path = tmp_path_factory.mktemp("trust-migrate-archive") / "store.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(store, arcname="store")
    return path


@pytest.fixture(scope="module")
def source_server():
    """A 0.6.3 server holding the big collection: a SOURCE that pages the same way on every run."""
    rng = np.random.default_rng(8)
    with launcher.serve(MID) as server:
        with Release(MID) as rel:
            col = rel.http(server.host, server.port).create_collection("receipt_lines")
            for start in range(0, N, 500):
                col.add(ids=[f"s-{i:05d}" for i in range(start, start + 500)], embeddings=rng.random((500, 8)))
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["archive", "server"])
def test_a_migrate_from_an_archive_or_a_server_killed_mid_copy_resumes_with_the_same_command(
    kind, archive, source_server, tmp_path
):
    source = str(archive) if kind == "archive" else source_server.url
    identity = str(archive.resolve()) if kind == "archive" else f"{source_server.host}:{source_server.port}"
    target = tmp_path / f"from-{kind}"
    jpath = journal.location(identity, str(target.resolve()))
    cmd = [*COMMAND, source, str(target), "--batch-size", "50", "--verify"]
    assert _kill_when(cmd, lambda: _copied(jpath) >= 300).returncode == -signal.SIGKILL
    done = _run(cmd)
    assert done.returncode == 0, done.stderr
    assert "resuming the run begun" in done.stderr and f"receipt_lines: verified, {N} records" in done.stdout
    with Release(MID) as rel:
        assert rel.persistent(target).get_collection("receipt_lines").count() == N


@pytest.mark.slow
def test_sigterm_during_a_migrate_prints_no_thread_traceback_and_the_same_command_resumes(store, tmp_path):
    target = tmp_path / "terminated"
    jpath = journal.location(str(store.resolve()), str(target.resolve()))
    cmd = [*COMMAND, str(store), str(target), "--batch-size", "50"]
    stopped = _kill_when(cmd, lambda: _copied(jpath) >= 200, sig=signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert "Traceback" not in stopped.stderr and "Exception in thread" not in stopped.stderr, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].startswith("chroma-compat: interrupted (SIGTERM)")
    done = _run([*cmd, "--verify"])
    assert done.returncode == 0 and f"receipt_lines: verified, {N} records" in done.stdout, done.stderr


# -- 6. faults are exit 2 with one line naming the cause and the fix ----------------------------------------


@pytest.mark.parametrize("header", [None, "Authorization: Bearer not-the-token"])
def test_a_token_server_without_the_token_or_with_a_wrong_one_names_the_header(store, token_server, tmp_path, header):
    extra = ["--target-header", header] if header else []
    line = _one_line_exit_2(_run([*COMMAND, str(store), token_server.url, *extra]))
    assert "--target-header" in line and f"127.0.0.1:{token_server.port}" in line
    assert ("refused the credentials given" if header else "needs credentials") in line
    assert "not-the-token" not in line
    # the same server as a SOURCE names the source's flag
    line = _one_line_exit_2(_run([*COMMAND, token_server.url, str(tmp_path / "out")]))
    assert "--source-header" in line and "source server" in line
    assert not (tmp_path / "out").exists()  # refused before anything was written


PROXY = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401); self.send_header("WWW-Authenticate", "Bearer"); self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def test_an_auth_proxy_that_refuses_even_the_version_names_the_header(store, tmp_path):
    """A server behind a proxy that answers 401 to everything, /version included (1.x has no built-in
    auth, so this is how a 1.x server is protected): before, `does not say which Chroma release it is`."""
    proxy = subprocess.Popen([sys.executable, "-c", PROXY], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{proxy.stdout.readline().strip()}"
        line = _one_line_exit_2(_run([*COMMAND, str(store), url]))
        assert "needs credentials: pass them with --target-header" in line and "HTTP 401" in line
        line = _one_line_exit_2(_run([*COMMAND, url, str(tmp_path / "out"), "--source-header", "X-Chroma-Token: x"]))
        assert "refused the credentials given with --source-header" in line
    finally:
        proxy.kill()
        proxy.wait()


def test_credentials_in_a_server_url_are_refused_never_dropped_nor_printed(store, token_server, tmp_path):
    url = f"http://admin:{token_server.token}@127.0.0.1:{token_server.port}"
    line = _one_line_exit_2(_run([*COMMAND, str(store), url]))
    assert "credentials in the URL" in line and "--target-header" in line
    assert token_server.token not in line and "admin" not in line
    line = _one_line_exit_2(_run([*COMMAND, url, str(tmp_path / "out")]))
    assert "--source-header" in line and token_server.token not in line


@pytest.mark.slow
def test_two_migrates_into_one_target_at_once_one_waits_its_turn_by_a_lock(store, tmp_path):
    target = tmp_path / "contended"
    cmd = [*COMMAND, str(store), str(target), "--target-version", MID, "--batch-size", "100"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [(p.returncode, err[-500:]) for p, _, err in results]
    [(_, _, refused)] = [(p, out, err) for p, out, err in results if p.returncode == 2]
    line = _one_line_exit_2(subprocess.CompletedProcess(cmd, 2, "", refused))
    assert "another migrate (pid " in line and str(target) in line and "run the same command again" in line
    assert not lock.location(str(target.resolve())).exists()  # released and removed by the run that held it
    with Release(MID) as rel:
        assert rel.persistent(target).get_collection("receipt_lines").count() == N


def test_a_server_killed_under_serve_is_one_line_without_the_reaper_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_chroma_compat", "serve", MID],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().split()[0]
        port = int(url.rsplit(":", 1)[1])
        server = _listener(port)  # the release's own server process (the reaper's child), by its socket
        os.kill(server, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "OSError" not in err, err
    assert (
        err.strip().splitlines()[-1].startswith(f"chroma-compat: error: chromadb {MID} server was killed by signal 9")
    ), err


def _listener(port: int) -> int:
    """The pid holding the listening socket on ``port`` (from /proc: no tool needed)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                inode = cols[9]
    assert inode, f"nothing listens on {port}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process holds the socket of port {port}")


def test_the_report_reproduce_line_keeps_the_endpoint_url_without_its_credentials(moto_server):
    from pytest_chroma_compat.snapshot.reports import markdown
    from pytest_chroma_compat.snapshot.validate import validate

    endpoint = moto_server.replace("http://", "http://testing:testing@")
    result = validate("s3://no-such-bucket/store/", "1.5.9", endpoint_url=endpoint, region="us-east-1")
    reproduce = markdown(result).split("Reproduce:")[1]
    assert f"--endpoint-url {moto_server}" in reproduce and "--region us-east-1" in reproduce
    assert "testing:testing" not in reproduce and "***" not in reproduce
