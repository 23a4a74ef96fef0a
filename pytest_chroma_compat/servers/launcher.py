"""Real Chroma servers of any release: start one from its cached environment, and stop it for sure.

    with servers.serve("0.6.3", auth="token") as server:
        server.url, server.token, server.headers   # http://127.0.0.1:PORT, the bearer token, its header

Why it is built this way:
- The server is the release's own: its ``chroma run`` (the typer app of 0.4.15
  to 0.6, the Rust CLI of 1.x) or, where that CLI cannot bind 127.0.0.1 or
  exits at start, the uvicorn app ``chroma run`` would start. Which one, which
  heartbeat path and which auth variables are data (``LAUNCHERS``,
  ``HEARTBEATS``, ``TOKEN_AUTH``), keyed by version specifiers.
- It gets the environment of ``envs.hermetic_environ`` (never the user's cloud
  credentials or CHROMA_* settings) plus exactly the variables of its era's
  token auth when asked, a private scratch directory named for ``leftovers``
  (HOME, cwd, the log, the data unless ``path`` is given), 127.0.0.1 and a free
  port (another one if a concurrent process takes it first).
- It must not outlive us: its own process group, registered with
  ``interrupts`` (SIGINT/SIGTERM/SIGHUP kill it before the CLI unwinds), run
  under the parent-death reaper (SIGKILL of this process kills it too: the
  thread that starts a server must live as long as the server, as the main
  thread of the CLI and of pytest does), and stopped at exit by ``atexit``
  if nobody stopped it. Stopping is SIGTERM to the group, then SIGKILL to the
  group, then a wait until no process of the group is left.
- Start-up is bounded: no heartbeat within ``timeout`` seconds, or an exit
  before it, is a HarnessFault carrying the last lines of the server's log.
- Token auth is configured the way each era documents it. Whether the server
  then refuses an unauthenticated request is measured at start
  (``auth_enforced``), not assumed: 1.0 dropped built-in auth, and a server
  configured for it answers everyone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path

from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine import cache_dirs, envs, leftovers, releases
from pytest_chroma_compat.servers.common import (  # noqa: F401  (re-exported: servers.X is the public name)
    _LIVE,
    _LIVE_LOCK,
    _PORT_TAKEN,
    HEARTBEATS,
    HOST,
    LOG_TAIL,
    PORT_ATTEMPTS,
    START_TIMEOUT,
    STOP_GRACE,
    TOKEN_AUTH,
    V1_COLLECTIONS,
    V2_COLLECTIONS,
    ChromaServer,
    _exit_words,
    _fault,
    _reported_version,
    _row,
    _stop,
    api_prefix,
    check_path,
    check_port,
    checked_options,
    free_port,
    group_members,
    http_status,
    measured,
    token_auth_env,
)

# How each era's server is started, first match wins. "chroma-run" is the release's CLI; "uvicorn"
# the app it would serve, with the store settings as environment variables (what `chroma run` sets).
LAUNCHERS: tuple[dict, ...] = (
    {
        "versions": ">=1.0.0",
        "launcher": "chroma-run",
        "log_path_flag": False,
        "why": "the Rust CLI: --path --host --port",
    },
    {
        "versions": ">=0.4.16,<0.4.18",
        "launcher": "uvicorn",
        "why": "`chroma run` of 0.4.16/0.4.17 sets CHROMA_SERVER_NOFILE=65535 itself and exits with ValueError "
        "where the open-files hard limit is lower (many containers)",
    },
    {
        "versions": ">=0.4.15,<0.4.23",
        "launcher": "chroma-run",
        "log_path_flag": False,
        "why": "the typer CLI: --path --host --port; --log-path arrives in 0.4.23 (measured: 'No such option')",
    },
    {
        "versions": ">=0.4.15,<1.0.0",
        "launcher": "chroma-run",
        "log_path_flag": True,
        "why": "the typer CLI: --path --host --port --log-path",
    },
    {
        "versions": ">=0.4.0,<0.4.15",
        "launcher": "uvicorn",
        "why": "`chroma run` arrives in 0.4.11 and binds 0.0.0.0 until --host arrives in 0.4.15",
    },
    {
        "versions": "<0.4.0",
        "launcher": "uvicorn",
        "store_env": {"CHROMA_DB_IMPL": "duckdb+parquet"},
        "why": "0.3 has no `chroma run`; its server is chromadb.app:app over a DuckDB+Parquet store",
    },
)

# Runs inside the release's interpreter. argv: launcher path host port [log_path]
_CHROMA_RUN = "import sys; sys.argv[0] = 'chroma'; from chromadb.cli.cli import app; sys.exit(app())"
_UVICORN = (
    "import sys, uvicorn; uvicorn.run('chromadb.app:app', host=sys.argv[1], port=int(sys.argv[2]), "
    "workers=1, log_level='info')"
)


def _command(interpreter: Path, row: dict, data: Path, port: int, log_file: Path) -> list[str]:
    if row["launcher"] == "chroma-run":
        cmd = [str(interpreter), "-c", _CHROMA_RUN, "run", "--path", str(data), "--host", HOST, "--port", str(port)]
        if row.get("log_path_flag"):
            cmd += ["--log-path", str(log_file.with_name("chroma.log"))]
        return cmd
    return [str(interpreter), "-c", _UVICORN, HOST, str(port)]


def _store_env(row: dict, data: Path) -> dict[str, str]:
    if row["launcher"] != "uvicorn":
        return {}
    return {"IS_PERSISTENT": "TRUE", "PERSIST_DIRECTORY": str(data), **row.get("store_env", {})}


def start(
    version: str,
    *,
    port: int | None = None,
    path: str | os.PathLike | None = None,
    auth: str | None = None,
    token: str | None = None,
    timeout: float = START_TIMEOUT,
    log: str | os.PathLike | None = None,
    backend: str = "local",
    pull: bool = False,
) -> ChromaServer:
    """Start ``version``'s server on 127.0.0.1 and return once its heartbeat answers.

    ``port`` None picks a free one; ``path`` None keeps the data in a private
    directory removed at stop; ``auth="token"`` configures the era's token auth
    with ``token`` (generated when None). Call ``stop()`` (or use :func:`serve`).
    ``backend="docker"`` runs the release's official image instead (servers/docker_backend.py;
    ``pull=True`` pulls it when absent).
    """
    from pytest_chroma_compat.engine.client import Release

    if backend == "docker":
        from pytest_chroma_compat.servers import docker_backend

        return docker_backend.start(
            version, port=port, path=path, auth=auth, token=token, timeout=timeout, log=log, pull=pull
        )
    if backend != "local":
        raise CompatError(f"unknown backend {backend!r}; the backends are 'local' and 'docker'")
    if pull:
        raise CompatError("pull=True needs backend='docker': the local backend installs releases, it pulls no image")

    if auth not in (None, "token"):
        raise CompatError(f"unknown auth {auth!r}; the one supported is 'token'")
    if timeout <= 0:
        raise CompatError(f"timeout must be positive, not {timeout}")
    release = Release(version)  # resolves a series / "latest"; unknown releases stop here
    version = release.version
    launch = _row(LAUNCHERS, version)
    assert launch is not None  # the table covers every version
    token, auth_env, data = checked_options(version, auth, token, port, path)
    interpreter = release.env.interpreter  # installs the release if needed
    scratch = cache_dirs.scratch_dir() / f"server-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (scratch / "cwd").mkdir(parents=True)
    owner = leftovers.hold(scratch)  # in use: no `env prune` sweeps it
    data = data or scratch / "data"
    log_file = Path(log).expanduser().resolve() if log else scratch / "server.log"
    server = ChromaServer(
        version, HOST, port or 0, data, log_file, launch["launcher"], token=token, scratch=scratch, _owner=owner
    )
    environ = {**envs.hermetic_environ(scratch), **_store_env(launch, data), **auth_env}
    try:
        for attempt in range(PORT_ATTEMPTS):
            server.port = port or free_port()
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "ab") as out:
                # its own process group, registered, under the parent-death reaper (see the module doc)
                server.proc = subprocess.Popen(
                    interrupts.with_parent_death_signal(_command(interpreter, launch, data, server.port, log_file)),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=scratch / "cwd",
                    env=environ,
                    start_new_session=True,
                )
            interrupts.track(server.proc)
            with _LIVE_LOCK:
                _LIVE.add(server)
            try:
                _wait(server, timeout)
                break
            except _Exited as exc:
                _stop(server.proc)
                if port is None and attempt + 1 < PORT_ATTEMPTS and _PORT_TAKEN.search(server.log_tail(200)):
                    continue  # another process took the free port between our probe and the bind
                cause = server.cause()
                raise _fault(
                    server, f"chromadb {version} server ({launch['launcher']}) {exc}" + (f": {cause}" if cause else "")
                ) from None
        return measured(server)
    except BaseException:
        server.stop()
        raise


class _Exited(Exception):
    pass


def _wait(server: ChromaServer, timeout: float) -> None:
    assert server.proc is not None
    heartbeat = f"{server.url}{server.api}/heartbeat"
    deadline = time.monotonic() + timeout
    while True:
        code = server.proc.poll()
        if code is not None:
            raise _Exited(_exit_words(code) + " before its heartbeat answered")
        try:
            if http_status(heartbeat, timeout=2) == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            _stop(server.proc)
            raise _fault(
                server, f"chromadb {server.version} server did not answer {heartbeat} within {timeout:g} s; killed it"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def serve(version: str, **options: object) -> Iterator[ChromaServer]:
    """:func:`start` for the duration of a ``with`` block; the server is stopped on the way out."""
    server = start(version, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def describe(version: str) -> dict:
    """The table rows that apply to ``version``: how its server is launched and what auth it gets."""
    version = releases.resolve(version)
    launch = _row(LAUNCHERS, version) or {}
    auth = _row(TOKEN_AUTH, version)
    return {
        "version": version,
        "launcher": launch.get("launcher"),
        "why": launch.get("why"),
        "api": api_prefix(version),
        "token_auth": auth["doc"] if auth else None,
    }
