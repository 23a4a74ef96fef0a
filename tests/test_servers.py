"""Real servers of real releases: started from their cached environments, stopped with nothing left.

Each server is found through /proc by its process group (the group ``servers/launcher.py``
gives it), so a test sees exactly its own processes. Zombies count as gone: a
killed process whose parent is gone waits for PID 1 to reap it, and in some
containers PID 1 never does; it holds no port, no file and no CPU.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.common.errors import CompatError, HarnessFault
from pytest_chroma_compat.servers import launcher

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
pytest_plugins = ["pytester"]

# The real command, as `python -m pytest_chroma_compat` runs it (serve and skew are in cli.main.VERBS).
CLI = textwrap.dedent("""
    import sys
    from pytest_chroma_compat.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((launcher.HOST, port)) == 0


def _gone(pgid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while launcher.group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(pid).encode() and fields[0] != b"Z":
                out.append(int(name))
    return out


@pytest.mark.parametrize("version", ["0.6.3", "1.5.9"])
def test_a_server_serves_its_data_path_and_stops_with_no_process_left(version, tmp_path):
    data = tmp_path / "data"
    server = launcher.start(version, path=data)
    try:
        assert server.host == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}"
        assert server.status(f"{server.api}/heartbeat") == 200
        assert server.reported_version  # what it says it is (1.x says "1.0.0")
        members = server.pids()
        assert members and server.pgid in members  # the reaper leads the group, the server is in it
        assert len(members) >= 2
        scratch = server.scratch
        assert scratch is not None and scratch.name.startswith(f"server-{version}-{os.getpid()}-")
        assert (data / "chroma.sqlite3").exists()  # the release's own store, where it was told
    finally:
        server.stop()
    assert _gone(server.pgid), launcher.group_members(server.pgid)
    assert not _listening(server.port)
    assert not scratch.exists()
    assert (data / "chroma.sqlite3").exists()  # a given path is the user's: it stays
    server.stop()  # twice is harmless


def test_token_auth_is_configured_per_era_and_measured_not_assumed():
    with launcher.serve("0.6.3", auth="token") as server:
        assert server.token and len(server.token) >= 20
        data = server.data_path()
        assert server.status(data) == 403  # refused without the token
        assert server.status(data, server.headers) == 200
        assert server.auth_enforced is True
    with launcher.serve("1.5.9", auth="token", token="a-token-of-mine") as server:
        assert server.token == "a-token-of-mine"
        assert server.status(server.data_path()) == 200  # 1.0 dropped built-in auth: it answers anyone
        assert server.auth_enforced is False


def test_start_failures_are_harness_faults_carrying_the_server_log(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "chroma.sqlite3").write_bytes(b"this is not an SQLite database, not at all" * 4)
    with pytest.raises(HarnessFault) as exc:
        launcher.start("0.6.3", path=broken, timeout=60)
    assert "exited with status" in str(exc.value)
    assert "file is not a database" in str(exc.value)  # the release's own words, from its log
    assert "\n" not in str(exc.value)
    with pytest.raises(HarnessFault, match=r"did not answer .*/api/v2/heartbeat within 0.01 s; killed it"):
        launcher.start("1.5.9", timeout=0.01)
    assert not launcher._LIVE  # nothing left registered, nothing left running


def test_bad_options_are_refused_before_anything_starts(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(CompatError, match="exists and is not a directory"):
        launcher.start("1.5.9", path=a_file)
    with pytest.raises(CompatError, match="not a TCP port"):
        launcher.start("1.5.9", port=70000)
    with pytest.raises(CompatError, match="no token auth"):
        launcher.start("0.4.5", auth="token")
    with pytest.raises(CompatError, match="unknown auth"):
        launcher.start("1.5.9", auth="basic")
    with socket.socket() as taken:
        taken.bind((launcher.HOST, 0))
        taken.listen()
        with pytest.raises(CompatError, match="is not free"):
            launcher.start("1.5.9", port=taken.getsockname()[1])


def test_the_table_covers_every_era():
    assert launcher.describe("0.4.10")["launcher"] == "uvicorn"
    assert launcher.describe("0.4.16")["launcher"] == "uvicorn"
    assert launcher.describe("0.4.24")["launcher"] == "chroma-run"
    assert launcher.describe("1.0.21")["api"] == "/api/v2"
    assert launcher.describe("0.6.3")["api"] == "/api/v1"
    assert launcher.describe("0.3.29")["token_auth"] is None


def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    """The CLI serving; returns it and its one stdout line (waited for at most 120 s)."""
    proc = subprocess.Popen(cli_command("serve", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    if not ready:
        proc.kill()
        pytest.fail(f"serve printed nothing within 120 s; stderr: {proc.stderr.read()}")
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize("how, code", [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_serve_prints_the_url_and_leaves_no_process_behind(how, code, tmp_path):
    proc, line = _serve("1.5.9", "--auth", "token", "--path", str(tmp_path / "data"))
    try:
        url, word, token = line.split(" ")
        assert url.startswith("http://127.0.0.1:") and word == "token" and len(token) >= 20
        port = int(url.rsplit(":", 1)[1])
        assert launcher.http_status(url + "/api/v2/heartbeat") == 200
        (reaper,) = _children(proc.pid)
        members = launcher.group_members(reaper)
        assert len(members) >= 2  # the reaper and the release's server
    finally:
        proc.send_signal(how)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    if how == signal.SIGTERM:
        assert "interrupted (SIGTERM)" in err
        assert "ignores the token auth" in err  # 1.x: said, not hidden
    assert _gone(reaper), f"left behind: {launcher.group_members(reaper)}"
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in members)
    assert not _listening(port)
    if how == signal.SIGKILL:
        _sweep_scratch_of(proc.pid)


def _sweep_scratch_of(pid: int) -> None:
    """A SIGKILLed owner cannot remove its server's scratch: it must be stale (`env prune` removes
    it), and the test removes it the same way rather than leave it in the shared cache."""
    from pytest_chroma_compat.engine import cache_dirs, leftovers

    root = cache_dirs.scratch_dir()
    mine = sorted(root.glob(f"server-*-{pid}-*"))
    assert mine, "the server had no scratch entry named for its owner"
    stale = leftovers.stale(root)
    for entry in mine:
        assert entry in stale
        assert leftovers.remove(entry) is None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


@pytest.mark.parametrize(
    "args, words",
    [
        (["9.9.9"], "unknown chromadb release '9.9.9'"),
        (["1.5.9", "--port", "0"], "port 0 is not a TCP port"),
        (["0.4.5", "--auth", "token"], "has no token auth"),
    ],
)
def test_serve_refuses_bad_input_in_one_line(args, words):
    done = subprocess.run(cli_command("serve", *args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_serve_refuses_a_path_that_is_a_file(tmp_path):
    a_file = tmp_path / "store"
    a_file.write_text("x")
    done = subprocess.run(
        cli_command("serve", "1.5.9", "--path", str(a_file)), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"chroma-compat: error: --path {a_file} exists and is not a directory"
    ]


@pytest.mark.slow
def test_the_fixture_starts_servers_and_stops_them_at_teardown(pytester):
    record = pytester.path / "pgids.txt"
    pytester.makeconftest("from pytest_chroma_compat.plugin.server_fixture import chroma_server  # noqa: F401\n")
    pytester.makepyfile(f"""
        import urllib.request
        import pytest

        RECORD = {str(record)!r}

        def _note(server):
            with open(RECORD, "a") as fh:
                fh.write(f"{{server.pgid}} {{server.port}}\\n")

        def test_two_releases_at_once(chroma_server):
            old, new = chroma_server("0.6.3", auth="token"), chroma_server("1.5.9")
            for server in (old, new):
                _note(server)
                assert server.host == "127.0.0.1" and server.port > 0
                with urllib.request.urlopen(server.url + server.api + "/heartbeat", timeout=10) as r:
                    assert r.status == 200
            assert (old.version, new.version) == ("0.6.3", "1.5.9")
            assert old.token and old.headers == {{"Authorization": "Bearer " + old.token}}
            assert new.token is None

        @pytest.mark.chroma_versions("1.5.9")
        def test_the_marker_chooses_the_release(chroma_server, tmp_path):
            server = chroma_server(path=tmp_path / "data")
            _note(server)
            assert server.version == "1.5.9" and (tmp_path / "data" / "chroma.sqlite3").exists()

        def test_a_failed_start_is_one_line(chroma_server):
            chroma_server("9.9.9")
    """)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*chroma_server('9.9.9'): unknown chromadb release '9.9.9'*"])
    assert "Traceback" not in result.stdout.str()
    rows = [line.split() for line in record.read_text().splitlines()]
    assert len(rows) == 3
    for pgid, port in rows:
        assert _gone(int(pgid)) and not _listening(int(port))


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_test_run_that_dies_takes_its_servers_along(how, pytester):
    """A crashed (SIGKILL) or interrupted (Ctrl-C) pytest run leaves no server behind."""
    record, stacks = pytester.path / "pgid.txt", pytester.path / "stacks.txt"
    pytester.makeconftest("from pytest_chroma_compat.plugin.server_fixture import chroma_server  # noqa: F401\n")
    pytester.makepyfile(f"""
        import faulthandler, signal, time

        STACKS = open({str(stacks)!r}, "w")
        faulthandler.register(signal.SIGUSR1, file=STACKS, all_threads=True)  # where it is, should it not exit

        def test_hangs(chroma_server):
            server = chroma_server("1.5.9")
            with open({str(record)!r}, "w") as fh:
                fh.write(f"{{server.pgid}} {{server.port}}")
            # short sleeps: a signal landing just before one long sleep's system call is seen only when
            # it ends (CPython checks signals after EINTR); an hour in all, so an ignored signal fails
            for _ in range(36000):
                time.sleep(0.1)
    """)
    output = open(pytester.path / "inner-output.txt", "w")  # what the inner run said, for a failure message
    # as from a terminal: SIGINT at its default, whatever the process running this test left it at
    # (an ignored SIGINT is inherited across exec, and then Python never raises KeyboardInterrupt)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(pytester.path)],
        cwd=pytester.path,
        stdout=output,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not (record.exists() and record.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "the server never started"
            time.sleep(0.2)
        pgid, port = map(int, record.read_text().split())
        assert launcher.group_members(pgid) and _listening(port)
    finally:
        proc.send_signal(how)
        try:
            proc.wait(timeout=180)  # an interrupted run tears down and reports first; slow on a loaded machine
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            output.close()
            tail = (pytester.path / "inner-output.txt").read_text()[-2000:]
            raise AssertionError(
                f"the interrupted run did not exit in 180 s (SIGINT here: "
                f"{signal.getsignal(signal.SIGINT)}); it printed:\n{tail}\n"
                f"its threads:\n{stacks.read_text()[-6000:]}"
            ) from None
        output.close()
    assert _gone(pgid), f"left behind: {launcher.group_members(pgid)}"
    assert not _listening(port)
    if how == signal.SIGKILL:
        _sweep_scratch_of(proc.pid)
