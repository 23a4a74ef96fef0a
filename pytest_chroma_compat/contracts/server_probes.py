"""Server probes: contracts that only a running ``chroma run`` server can show.

Unlike probes.py, this file runs on the HOST: the server is a separate process
of the release's own environment, and the host talks to it with plain urllib
(nothing of chromadb is imported here).

Why it is built this way:
- The server is started the way the release documents it: ``chroma run`` (the
  ``chromadb.cli.cli`` app, a typer app in 0.x, the Rust CLI in 1.x) when that
  app can bind 127.0.0.1 (``--host`` exists from 0.4.15 on; before that
  ``chroma run`` binds 0.0.0.0, and before 0.4.11 it does not exist); otherwise
  the same uvicorn app ``chroma run`` would start (``chromadb.app:app``, store
  settings from the environment), on 127.0.0.1. The launcher below decides by
  looking at the installed CLI, never by comparing versions.
- Each server gets a scratch directory (hermetic HOME/XDG, cwd, store), the
  environment from ``envs.hermetic_environ`` plus exactly the variables under
  test, a free port on 127.0.0.1, a bounded wait for the port to answer, and is
  always killed with its whole process group.
- Known: ``chroma run`` of 0.4.16 and 0.4.17 sets CHROMA_SERVER_NOFILE=65535
  itself and exits with ValueError where the open-files hard limit is lower (as
  in many containers), whatever the auth settings. The launcher sees that line
  in the installed CLI and, under such a limit, serves the same app with
  uvicorn (as servers/launcher.py does): the auth contract is the app's, not the CLI's.
- A server that exits during start-up under some configuration is an answer
  ("server did not start: ...", stable words only: exit status and exception
  type). A server that cannot start under ANY configuration, or that stays up
  without answering, is a failure of the probe (no value, never cached).
- Observations are cached by measure.py per (environment key, hash of THIS
  file), separately from probes.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.common.errors import WorkerError
from pytest_chroma_compat.engine import cache_dirs, envs

if TYPE_CHECKING:
    from pytest_chroma_compat.engine.client import Release

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
_PORT_TAKEN = re.compile(r"address already in use|errno 98|os error 98", re.I)

# Token auth as each era's docs configure it (the migration log's "Auth overhaul - April 20, 2024").
AUTH_ENV = {
    "old_style_env": {
        "CHROMA_SERVER_AUTH_PROVIDER": "chromadb.auth.token.TokenAuthServerProvider",
        "CHROMA_SERVER_AUTH_CREDENTIALS_PROVIDER": "chromadb.auth.token.TokenConfigServerAuthCredentialsProvider",
        "CHROMA_SERVER_AUTH_CREDENTIALS": "test-token",
    },
    "new_style_env": {
        "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
        "CHROMA_SERVER_AUTHN_CREDENTIALS": "test-token",
    },
}

# Data endpoints. The v2 API is used where the server serves it (its heartbeat answers 200,
# public even with auth on): 1.x answers 410 Gone on /api/v1, and 0.6.3's /api/v1/collections
# fails with 400 ("cannot unpack non-iterable coroutine object") before auth is looked at.
# 0.4.x has no v2; with auth on, its middleware answers 401 on unknown paths, hence the heartbeat.
V1_COLLECTIONS = "/api/v1/collections"
V2_COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"
HEARTBEATS = ("/api/v1/heartbeat", "/api/v2/heartbeat")

# Runs inside the release's interpreter: argv = path host port.
LAUNCHER = r"""
import inspect, os, sys
path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    import chromadb.cli.cli as cli
except ImportError:
    cli = None
run = getattr(cli, "run", None)
python_cli = callable(run) and not hasattr(cli, "chromadb_rust_bindings")
fixed_nofile = python_cli and "CHROMA_SERVER_NOFILE" in inspect.getsource(run)
if fixed_nofile:
    import resource
    fixed_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 65535
if cli is not None and not fixed_nofile and (not python_cli or "host" in inspect.signature(run).parameters):
    print("pytest-chroma-compat launcher: chroma run", file=sys.stderr, flush=True)
    sys.argv = ["chroma", "run", "--path", path, "--host", host, "--port", str(port)]
    sys.exit(cli.app())
print("pytest-chroma-compat launcher: uvicorn chromadb.app:app", file=sys.stderr, flush=True)
os.environ["IS_PERSISTENT"] = "TRUE"
os.environ["PERSIST_DIRECTORY"] = path
import uvicorn
uvicorn.run("chromadb.app:app", host=host, port=port, workers=1, log_level="info")
"""

_ERROR_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception))\b")


class ServerError(WorkerError):
    """The release's server could not be run at all: the probe has no value."""


class ServerDidNotStart(Exception):
    """The server process exited before it answered; ``str()`` is stable across runs,
    ``detail`` is the last error line of its log (for failure messages only)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


@dataclass
class Server:
    version: str
    host: str
    port: int
    launcher: str
    log: Path

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def status(self, path: str, headers: dict | None = None) -> str:
        return http_status(self.url(path), headers)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


def http_status(url: str, headers: dict | None = None, timeout: float = REQUEST_TIMEOUT) -> str:
    """The HTTP status of a GET, as a string ("200", "401", ...)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(server: Server) -> bool:
    for path in HEARTBEATS:
        try:
            http_status(server.url(path), timeout=2)
            return True  # any HTTP answer means the port is served
        except (urllib.error.URLError, OSError):
            continue
    return False


def _exit_reason(code: int, log: str) -> str:
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    types = [m.group(1) for line in log.splitlines() if (m := _ERROR_LINE.match(line))]
    return f"{how} ({types[-1]})" if types else how


def _error_detail(log: str) -> str:
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if _ERROR_LINE.match(lines[i]):  # rich tracebacks wrap the message: take the next line too
            return " ".join(part.strip() for part in lines[i : i + 2])[:300]
    return lines[-1].strip()[:300] if lines else ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group too (uvicorn workers, Rust threads)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if proc.returncode is not None:
        interrupts.untrack(proc)


@contextlib.contextmanager
def serve(release: Release, env: dict | None = None, *, timeout: float = START_TIMEOUT) -> Iterator[Server]:
    """A server of ``release`` on 127.0.0.1 with ``env`` added to a hermetic environment.

    Raises ServerDidNotStart if the process exits before answering, ServerError
    if it neither exits nor answers within ``timeout`` seconds. The server's
    process group is killed and its scratch directory removed on the way out.
    """
    version = release.version
    interpreter = release.env.interpreter  # installs the release if needed (CompatError on failure)
    scratch = cache_dirs.scratch_dir() / f"server-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (scratch / "cwd").mkdir(parents=True)
    environ = {**envs.hermetic_environ(scratch), **(env or {})}
    proc: subprocess.Popen | None = None
    try:
        for attempt in range(PORT_ATTEMPTS):
            log = scratch / f"server-{attempt}.log"
            server = Server(version, HOST, free_port(), "", log)
            with open(log, "wb") as out:
                # its own process group, registered so a signal to us kills it; SIGKILL of us, the kernel
                # (parent-death signal: this thread waits inside serve() for the server's whole life)
                proc = subprocess.Popen(
                    interrupts.with_parent_death_signal(
                        [str(interpreter), "-c", LAUNCHER, str(scratch / "store"), HOST, str(server.port)]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=scratch / "cwd",
                    env=environ,
                    start_new_session=True,
                )
                interrupts.track(proc)
            try:
                _wait(proc, server, timeout)
                break
            except ServerDidNotStart:
                _stop(proc)
                # another process took the free port between our probe and the bind: try another
                if attempt + 1 < PORT_ATTEMPTS and _PORT_TAKEN.search(server.log_tail(200)):
                    continue
                raise
        launched = re.search(r"pytest-chroma-compat launcher: (.+)", server.log_tail(400) or "")
        server.launcher = launched.group(1) if launched else "?"
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _wait(proc: subprocess.Popen, server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            tail = server.log_tail(200)
            raise ServerDidNotStart(_exit_reason(code, tail), _error_detail(tail))
        if _answers(server):
            return
        if time.monotonic() > deadline:
            raise ServerError(
                f"chromadb {server.version} server did not answer on {server.host}:{server.port} "
                f"within {timeout:.0f} s; killed it",
                stderr_tail=server.log_tail(),
            )
        time.sleep(0.25)


def data_endpoint(server: Server) -> str:
    """The collections listing of the newest API the server serves."""
    return V2_COLLECTIONS if server.status("/api/v2/heartbeat") == "200" else V1_COLLECTIONS


def data_status(server: Server, headers: dict | None = None) -> str:
    """Status of listing collections (a data endpoint) on the newest API the server serves."""
    return server.status(data_endpoint(server), headers)


# -- probes -------------------------------------------------------------------------------------


def server_token_auth(release: Release) -> Any:
    """The status of an unauthenticated data request to a server configured for token auth,
    once with the pre-0.5 env vars and once with the 0.5+ ones."""
    out: dict[str, str] = {}
    details: list[str] = []
    for style, env in AUTH_ENV.items():
        try:
            with serve(release, env) as server:
                out[style] = data_status(server)
        except ServerDidNotStart as exc:
            out[style] = f"server did not start: {exc}"
            details.append(exc.detail)
    if len(details) == len(AUTH_ENV):
        raise ServerError(
            f"chromadb {release.version} server did not start under any configuration: "
            + "; ".join(sorted(set(details)))
        )
    return out


PROBES: dict[str, Callable[[Release], Any]] = {"server_token_auth": server_token_auth}
