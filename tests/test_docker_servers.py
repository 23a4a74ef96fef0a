"""The Docker backend: real official images on a real engine, and one line wherever there is none.

The tests that need an engine skip with ``docker_unavailable()``'s line (the
fixture skips its own the same way, an absent image too). The others run
everywhere: the line itself, against an engine address where nothing listens;
the CLI's exit 2; the fixture's skip; the data-directory table; and the
container that would be created, which is built by a pure function.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.common.errors import CompatError, HarnessFault
from pytest_chroma_compat.engine import cache_dirs
from pytest_chroma_compat.servers import docker_backend, launcher
from pytest_chroma_compat.servers.docker_backend import DockerUnavailable, docker_unavailable

from .conftest import run_cli

pytest_plugins = ["pytester"]

ENGINE = docker_unavailable()
needs_engine = pytest.mark.skipif(ENGINE is not None, reason=ENGINE or "")


def _closed_port() -> int:
    return launcher.free_port()  # bound then released: nothing listens there


@pytest.fixture
def no_engine(monkeypatch) -> str:
    """DOCKER_HOST at a 127.0.0.1 port where nothing listens (pytester's subprocesses inherit it)."""
    host = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


def _is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


# ---------------------------------------------------------------- everywhere: no engine needed


def test_the_reason_is_one_line_naming_where_the_engine_was_looked_for(no_engine, monkeypatch, tmp_path):
    assert docker_unavailable() == f"no Docker engine is reachable at DOCKER_HOST={no_engine}: Connection refused"
    hits = docker_backend._probe.cache_info().hits
    assert docker_unavailable() == f"no Docker engine is reachable at DOCKER_HOST={no_engine}: Connection refused"
    assert docker_backend._probe.cache_info().hits == hits + 1  # cached per DOCKER_HOST: asked once

    socket_path = tmp_path / "no-such" / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    assert docker_unavailable() == (
        f"no Docker engine is reachable at DOCKER_HOST=unix://{socket_path}: No such file or directory"
    )

    monkeypatch.setenv("DOCKER_HOST", "tcp://build-box.example:2375")  # refused without asking it
    assert docker_unavailable() == (
        "DOCKER_HOST=tcp://build-box.example:2375 is not this machine: the docker "
        "backend publishes on 127.0.0.1 and mounts local directories"
    )
    for reason in (docker_unavailable(), ENGINE):
        assert reason is None or "\n" not in reason


def test_the_package_imports_and_answers_without_the_docker_sdk():
    code = textwrap.dedent("""
        import sys
        sys.modules["docker"] = None  # `import docker` now raises ImportError, as where it is not installed
        from pytest_chroma_compat.plugin import server_fixture
        from pytest_chroma_compat.servers import docker_backend, launcher
        print(docker_backend.docker_unavailable())
        try:
            launcher.start("0.6.3", backend="docker")
        except docker_backend.DockerUnavailable as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = "the docker Python package is not installed (pip install 'pytest-chroma-compat[docker]')"
    assert done.stdout.splitlines() == [line, f"refused: {line}"]

    quiet = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pytest_chroma_compat.servers.docker_backend, "
            "pytest_chroma_compat.servers.launcher; print('docker' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quiet.stdout.strip() == "False", quiet.stderr  # importing the backend imports no SDK


def test_the_data_directory_is_each_eras_own():
    assert docker_backend.data_dir("0.6.3") == "/chroma/chroma"
    assert docker_backend.data_dir("0.4.23") == "/chroma/chroma"
    assert docker_backend.data_dir("1.0.0") == "/data"
    assert docker_backend.data_dir("1.5.9") == "/data"
    with pytest.raises(CompatError, match="0.4.22 cannot run on the docker backend: .*reinstalls hnswlib"):
        docker_backend.data_dir("0.4.22")


def test_the_container_gets_a_loopback_port_the_data_and_no_host_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-aws-secret")
    monkeypatch.setenv("CHROMA_SERVER_AUTHN_CREDENTIALS", "host-chroma-token")
    monkeypatch.setenv("OPENAI_API_KEY", "host-openai-key")
    data = tmp_path / "data"

    old = docker_backend.container_spec(
        "0.6.3",
        host_port=41234,
        data=data,
        user="1000:1000",
        name="n",
        key="k",
        auth_env=launcher.token_auth_env("0.6.3", "our-token"),
    )
    assert old["image"] == "chromadb/chroma:0.6.3"
    assert old["ports"] == {"8000/tcp": ("127.0.0.1", 41234)}  # never 0.0.0.0
    assert old["volumes"] == {str(data): {"bind": "/chroma/chroma", "mode": "rw"}}
    assert old["environment"] == {
        "ANONYMIZED_TELEMETRY": "False",
        "HOME": "/tmp",
        "IS_PERSISTENT": "TRUE",
        "PERSIST_DIRECTORY": "/chroma/chroma",
        "CHROMA_LOG_CONFIG": "/chroma/chromadb/log_config.yml",
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": "our-token",
    }
    assert old["user"] == "1000:1000" and old["working_dir"] == "/tmp" and old["name"] == "n"
    assert old["labels"] == {docker_backend.OWNER_LABEL: str(os.getpid()), docker_backend.SERVER_LABEL: "k"}

    new = docker_backend.container_spec("1.5.9", host_port=41235, data=data)
    assert new["image"] == "chromadb/chroma:1.5.9" and new["ports"] == {"8000/tcp": ("127.0.0.1", 41235)}
    assert new["volumes"] == {str(data): {"bind": "/data", "mode": "rw"}}
    assert new["environment"] == {"ANONYMIZED_TELEMETRY": "False", "HOME": "/tmp"}
    assert "user" not in new and "working_dir" not in new  # a rootless engine's root is the user already

    era_04 = docker_backend.container_spec(
        "0.4.24", host_port=1, data=data, auth_env=launcher.token_auth_env("0.4.24", "t0")
    )
    assert era_04["environment"]["CHROMA_SERVER_AUTH_CREDENTIALS"] == "t0"
    for spec in (old, new, era_04):
        text = json.dumps(spec)
        assert "host-aws-secret" not in text and "host-chroma-token" not in text and "host-openai-key" not in text
        assert not set(spec["environment"]) & {"AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "PATH", "DOCKER_HOST"}


def test_bad_input_is_refused_before_the_engine_and_no_engine_leaves_nothing(no_engine, tmp_path):
    mine = f"server-*-{os.getpid()}-*"
    before = set(cache_dirs.scratch_dir().glob(mine))
    with pytest.raises(CompatError, match="not a TCP port"):
        launcher.start("1.5.9", backend="docker", port=70000)
    with pytest.raises(CompatError, match="unknown chromadb release '9.9.9'"):
        launcher.start("9.9.9", backend="docker")
    with pytest.raises(CompatError, match="cannot run on the docker backend"):
        launcher.start("0.4.22", backend="docker")
    with pytest.raises(CompatError, match="unknown backend 'podman'; the backends are 'local' and 'docker'"):
        launcher.start("1.5.9", backend="podman")
    with pytest.raises(CompatError, match="pull=True needs backend='docker'"):
        launcher.start("1.5.9", pull=True)
    with pytest.raises(DockerUnavailable) as exc:
        launcher.start("0.6.3", backend="docker", path=tmp_path / "data", auth="token")
    assert str(exc.value) == f"no Docker engine is reachable at DOCKER_HOST={no_engine}: Connection refused"
    assert exc.value.exit_code == 2
    assert not launcher._LIVE and set(cache_dirs.scratch_dir().glob(mine)) == before  # nothing started, nothing made


def test_serve_without_an_engine_is_one_line_and_exit_2(no_engine):
    done = run_cli("serve", "0.6.3", "--backend", "docker", timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"chroma-compat: error: no Docker engine is reachable at DOCKER_HOST={no_engine}: Connection refused"
    ]


@pytest.mark.parametrize(
    "args, line",
    [
        (["0.6.3", "--pull"], "chroma-compat: error: --pull needs --backend docker"),
        (
            ["0.4.22", "--backend", "docker"],
            "chroma-compat: error: chromadb 0.4.22 cannot run on the docker backend: "
            "its image's entrypoint reinstalls hnswlib with pip at every start (as "
            "root, from the network); use the default backend",
        ),
    ],
)
def test_serve_refuses_what_the_docker_backend_cannot_do_in_one_line(args, line, no_engine):
    done = run_cli("serve", *args, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [line]


def test_the_fixture_skips_with_the_reason_and_still_fails_bad_input(no_engine, pytester):
    pytester.makeconftest("from pytest_chroma_compat.plugin.server_fixture import chroma_server  # noqa: F401\n")
    pytester.makepyfile("""
        def test_needs_docker(chroma_server, tmp_path):
            chroma_server("0.6.3", backend="docker", path=tmp_path / "data")
            raise AssertionError("not reached: there is no engine")

        def test_bad_input_is_the_tests_fault(chroma_server):
            chroma_server("0.4.22", backend="docker")
    """)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chroma_server('0.4.22'): chromadb 0.4.22 cannot run on the docker backend*",
            f"SKIPPED * no Docker engine is reachable at DOCKER_HOST={no_engine}: Connection refused",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "not reached" not in result.stdout.str()


def test_the_watcher_acts_when_its_owner_dies_and_then_exits(no_engine):
    """SIGKILL of the owner: the watcher notices within a second, asks the engine to remove the
    server's containers (here no engine answers), and exits: it never outlives its errand."""
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import subprocess, time
        from pytest_chroma_compat.servers.docker_backend import watch_command
        watcher = subprocess.Popen(watch_command("server-0.6.3-1-0123abcd"), start_new_session=True)
        print(watcher.pid, flush=True)
        time.sleep(120)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        watcher = int(owner.stdout.readline())
        time.sleep(1.5)
        assert not _is_gone(watcher), "the watcher left while its owner was alive"
    finally:
        owner.kill()
        owner.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not _is_gone(watcher):
        assert time.monotonic() < deadline, "the watcher outlived its owner"
        time.sleep(0.2)


# ---------------------------------------------------------------- a real engine and the official images


def _engine():
    import docker

    return docker.from_env()


def _containers(key: str) -> list:
    return _engine().containers.list(all=True, filters={"label": f"{docker_backend.SERVER_LABEL}={key}"})


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((launcher.HOST, port)) == 0


# What each image prints at start (0.x: bin/docker_entrypoint.sh's echo; 1.x: any output at all).
LOG_WORDS = {"0.6.3": "Starting 'uvicorn chromadb.app:app'", "1.5.9": ""}


def _needs_image(version: str) -> None:
    import docker.errors

    try:
        _engine().images.get(docker_backend.image_name(version))
    except docker.errors.ImageNotFound:
        pytest.skip(f"docker image chromadb/chroma:{version} is not present (docker pull chromadb/chroma:{version})")


def _start(version: str, **options: object) -> launcher.ChromaServer:
    try:
        return launcher.start(version, backend="docker", **options)  # type: ignore[arg-type]
    except DockerUnavailable as exc:  # the image is absent: pull it to run this test
        pytest.skip(str(exc))


@needs_engine
@pytest.mark.parametrize("version", ["0.6.3", "1.5.9"])
def test_an_official_image_serves_its_own_client_through_the_fixture(version, chroma_server, tmp_path):
    from pytest_chroma_compat.engine.client import Release
    from pytest_chroma_compat.servers import skew

    data = tmp_path / "data"
    server = chroma_server(version, backend="docker", path=data)
    assert server.backend == "docker" and isinstance(server, launcher.ChromaServer)
    assert server.url == f"http://127.0.0.1:{server.port}" and server.version == version
    assert server.status(f"{server.api}/heartbeat") == 200 and server.reported_version
    with Release(version) as client:
        result = client.run(
            skew.TARGET, sys_path=[str(skew.RELEASE_SIDE)], host=server.host, port=server.port, headers=server.headers
        )
    ops = {op["op"]: op for op in result["operations"]}
    assert all(op["ok"] for op in ops.values()), [op for op in ops.values() if not op["ok"]]
    assert ops["get_where"]["value"] == ["a", "d"]  # added, then read back through the server
    store = data / "chroma.sqlite3"
    assert store.exists()  # the image wrote where the table says it keeps its data, i.e. into `path`
    assert store.stat().st_uid == os.getuid()  # and as us: the user can delete their own data


@needs_engine
@pytest.mark.parametrize("version", ["0.6.3", "1.5.9"])
def test_stop_removes_the_container_and_keeps_the_users_data(version, tmp_path):
    data = tmp_path / "data"
    server = _start(version, path=data)
    try:
        assert isinstance(server, docker_backend.DockerChromaServer) and server.running()
        assert server.pgid is None and server.pids() == []  # nothing of it runs on the host
        assert len(_containers(server.key)) == 1
        log = server.log_tail(400)  # the container's output, followed into the server's log
        assert log.strip() and LOG_WORDS[version] in log
        scratch, key, port = server.scratch, server.key, server.port
    finally:
        server.stop()
    assert _containers(key) == [] and not _listening(port)
    assert not scratch.exists() and (data / "chroma.sqlite3").exists()
    assert server._watcher is None and not server._unremoved
    server.stop()  # twice is harmless


@needs_engine
def test_token_auth_is_measured_in_the_container_too():
    server = _start("0.6.3", auth="token")
    try:
        assert server.status(server.data_path()) == 403 and server.status(server.data_path(), server.headers) == 200
        assert server.auth_enforced is True
    finally:
        server.stop()
    server = _start("1.5.9", auth="token", token="a-token-of-mine")
    try:
        assert server.token == "a-token-of-mine" and server.auth_enforced is False  # 1.0 dropped built-in auth
    finally:
        server.stop()


@needs_engine
def test_a_failed_start_is_one_line_with_the_containers_own_words(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "chroma.sqlite3").write_bytes(b"this is not an SQLite database, not at all" * 4)
    _needs_image("0.6.3")
    with pytest.raises(HarnessFault) as exc:
        launcher.start("0.6.3", backend="docker", path=broken, timeout=120)
    assert "exited with status" in str(exc.value) and "file is not a database" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not launcher._LIVE
    assert _engine().containers.list(all=True, filters={"label": f"{docker_backend.OWNER_LABEL}={os.getpid()}"}) == []


@needs_engine
def test_an_absent_image_is_one_line_naming_the_pull():
    import docker.errors

    engine = _engine()
    for version in ("0.4.23", "0.5.0", "1.0.0", "1.0.1"):
        try:
            engine.images.get(docker_backend.image_name(version))
        except docker.errors.ImageNotFound:
            break
    else:
        pytest.skip("every candidate image is present on this engine")
    with pytest.raises(DockerUnavailable) as exc:
        launcher.start(version, backend="docker")
    image = f"chromadb/chroma:{version}"
    assert str(exc.value) == f"docker image {image} is not present (docker pull {image})"
    assert not launcher._LIVE


@needs_engine
def test_a_killed_owner_leaves_no_container(tmp_path):
    record = tmp_path / "server.txt"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from pytest_chroma_compat.servers import launcher
        from pytest_chroma_compat.servers.docker_backend import DockerUnavailable
        try:
            server = launcher.start("1.5.9", backend="docker")
        except DockerUnavailable as exc:
            open({str(record)!r}, "w").write("absent " + str(exc))
            raise SystemExit(0)
        open({str(record)!r}, "w").write(f"{{server.key}} {{server.port}}")
        time.sleep(300)
    """),
        ]
    )
    try:
        deadline = time.monotonic() + 180
        while not (record.exists() and record.read_text()):
            assert time.monotonic() < deadline and owner.poll() is None, "the server never started"
            time.sleep(0.2)
        if record.read_text().startswith("absent "):
            pytest.skip(record.read_text()[len("absent ") :])
        key, port = record.read_text().split()
        assert len(_containers(key)) == 1 and _listening(int(port))
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=60)
    deadline = time.monotonic() + 60
    while _containers(key):
        assert time.monotonic() < deadline, "the container outlived its owner"
        time.sleep(0.5)
    assert not _listening(int(port))
    from pytest_chroma_compat.engine import leftovers

    scratch = cache_dirs.scratch_dir() / key  # a SIGKILLed owner cannot remove it: stale, as `env prune` sees it
    assert scratch in leftovers.stale(cache_dirs.scratch_dir()) and leftovers.remove(scratch) is None
    assert not Path(scratch).exists()
