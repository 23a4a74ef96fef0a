"""What every server backend shares: the running-server object, its era's API and token auth, ports,
paths, stopping a process group for sure, and the one-line fault with the log's tail.

Why a module of its own: the local launcher (servers/launcher.py) and the Docker backend (servers/docker_backend.py)
both build a ChromaServer and stop it the same way; the launcher also chooses between them, so the
shared part sits below both and neither imports the other's caller.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.common.errors import CompatError, HarnessFault
from pytest_chroma_compat.engine import cache_dirs

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
PORT_ATTEMPTS = 3
LOG_TAIL = 15
_PORT_TAKEN = re.compile(r"address already in use|errno 98|os error 98", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ERROR_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception)\b")

# The heartbeat each era serves (1.x answers 410 Gone on /api/v1; 0.x has /api/v1, 0.5 and 0.6 both).
HEARTBEATS: tuple[tuple[str, str], ...] = ((">=1.0.0", "/api/v2"), ("<1.0.0", "/api/v1"))

# Token auth as each era documents it ({token} is replaced). 1.0 removed built-in auth; a user who
# upgrades carries the 0.5 variables over, so those are set, and `auth_enforced` shows they do nothing.
TOKEN_AUTH: tuple[dict, ...] = (
    {
        "versions": ">=1.0.0",
        "env": {
            "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
            "CHROMA_SERVER_AUTHN_CREDENTIALS": "{token}",
        },
        "doc": "1.0 removed built-in auth (migration log); the 0.5 variables are set and ignored",
    },
    {
        "versions": ">=0.5.0,<1.0.0",
        "env": {
            "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
            "CHROMA_SERVER_AUTHN_CREDENTIALS": "{token}",
        },
        "doc": "migration log, Auth overhaul - April 20, 2024",
    },
    {
        "versions": ">=0.4.7,<0.5.0",
        "env": {
            "CHROMA_SERVER_AUTH_PROVIDER": "chromadb.auth.token.TokenAuthServerProvider",
            "CHROMA_SERVER_AUTH_CREDENTIALS_PROVIDER": "chromadb.auth.token.TokenConfigServerAuthCredentialsProvider",
            "CHROMA_SERVER_AUTH_CREDENTIALS": "{token}",
        },
        "doc": "0.4 token auth (measured: 0.4.7 and 0.4.8 exit at start with it, docs/contracts.md)",
    },
)

V1_COLLECTIONS = "/api/v1/collections"
V2_COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def _row(table: tuple[dict, ...], version: str) -> dict | None:
    from packaging.specifiers import SpecifierSet

    return next((row for row in table if version in SpecifierSet(row["versions"])), None)


def api_prefix(version: str) -> str:
    from packaging.specifiers import SpecifierSet

    return next(prefix for spec, prefix in HEARTBEATS if version in SpecifierSet(spec))


def token_auth_env(version: str, token: str) -> dict[str, str]:
    """The server variables of ``version``'s token auth; CompatError where the era has none."""
    row = _row(TOKEN_AUTH, version)
    if row is None:
        raise CompatError(f"chromadb {version} has no token auth (it arrived in 0.4.7); start it without --auth")
    return {k: v.replace("{token}", token) for k, v in row["env"].items()}


@dataclass(eq=False)  # identity: a running process, kept in a WeakSet
class ChromaServer:
    """A running server. ``stop()`` (or leaving ``serve``) ends it with its whole process group."""

    backend: ClassVar[str] = "local"  # "docker": docker_servers.DockerChromaServer
    version: str
    host: str
    port: int
    path: Path
    log: Path
    launcher: str
    token: str | None = None
    auth_enforced: bool | None = None
    reported_version: str | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)
    scratch: Path | None = field(default=None, repr=False)
    _owner: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api(self) -> str:
        """The API prefix this release serves (/api/v1 before 1.0, /api/v2 from 1.0)."""
        return api_prefix(self.version)

    @property
    def headers(self) -> dict[str, str]:
        """What a client sends to pass token auth (every era reads ``Authorization: Bearer``)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def pids(self) -> list[int]:
        """Live (non-zombie) processes of the server's group: empty once it is stopped."""
        return group_members(self.pgid) if self.pgid else []

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        """The last lines of the server's log, colour codes removed."""
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])

    def cause(self) -> str:
        """The line of the log that names why it failed: a Rust panic's message, else the last
        ``SomethingError: ...`` line (rich tracebacks put it after dozens of boxed frames)."""
        lines = [ln.strip() for ln in self.log_tail(400).splitlines()]
        for i in range(len(lines) - 1, -1, -1):
            if "panicked at" in lines[i]:
                return " ".join(lines[i : i + 2])[:400]
        for line in reversed(lines):
            if _ERROR_LINE.match(line):
                return line[:400]
        return ""

    def status(self, path: str, headers: dict | None = None) -> int:
        """The HTTP status of a GET on this server (``path`` from the root: /api/v2/heartbeat)."""
        return http_status(self.url + path, headers)

    def data_path(self) -> str:
        """The collections listing of the newest API the server serves (an endpoint auth guards)."""
        return V2_COLLECTIONS if self.status("/api/v2/heartbeat") == 200 else V1_COLLECTIONS

    def stop(self) -> None:
        """Stop the server for sure; the private scratch (its data, unless ``path`` was given, and its
        log, unless ``log`` was) goes with it. Calling it again does nothing."""
        if self.proc is not None:
            _stop(self.proc)
        _LIVE.discard(self)
        if self.scratch is not None:
            if self._owner is not None:
                with contextlib.suppress(OSError):
                    self._owner.close()  # type: ignore[attr-defined]
                self._owner = None
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self) -> ChromaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LIVE: weakref.WeakSet[ChromaServer] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def http_status(url: str, headers: dict | None = None, timeout: float = 10.0) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _http_text(url: str, timeout: float = 5.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_port(port: int) -> int:
    """A port the user chose: in range and free on 127.0.0.1, or one line saying why not."""
    if not 0 < port < 65536:
        raise CompatError(f"port {port} is not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise CompatError(f"port {port} on {HOST} is not free: {exc.strerror or exc}") from None
    return port


def check_path(path: str | os.PathLike) -> Path:
    """A data directory the user chose: an existing directory, or one we can create."""
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise CompatError(f"--path {target} exists and is not a directory")
    return cache_dirs.writable_dir(target, "the server's data directory", "choose another --path")


def group_members(pgid: int) -> list[int]:
    """Pids of live processes whose process group is ``pgid`` (Linux: read from /proc).

    A zombie counts as gone only once all its threads are: the leader of a multithreaded
    server (the Rust core) turns zombie while its other threads still hold its sockets."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel whether the group still exists at all
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    for name in entries:
        if not name.isdigit():
            continue
        stat = _stat(f"/proc/{name}/stat")  # after "(comm)": state ppid pgrp ...
        if len(stat) > 2 and stat[2] == str(pgid) and (stat[0] != "Z" or _threads_alive(name)):
            found.append(int(name))
    return sorted(found)


def _stat(path: str) -> list[str]:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _threads_alive(pid: str) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any((_stat(f"/proc/{pid}/task/{tid}/stat") or ["X"])[0] not in ("Z", "X") for tid in tasks)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    # the group too: the reaper may be gone while the server (uvicorn workers, Rust threads) lingers
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE)
    deadline = time.monotonic() + STOP_GRACE
    while group_members(proc.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    if proc.returncode is not None:
        interrupts.untrack(proc)


def checked_options(
    version: str, auth: str | None, token: str | None, port: int | None, path: str | os.PathLike | None
) -> tuple[str | None, dict[str, str], Path | None]:
    """(token, the era's token-auth environment, the data path) for a server of ``version``, with a
    port or path the user named checked first: every backend refuses bad input before any work."""
    if auth == "token":
        token = token or secrets.token_urlsafe(24)
        auth_env = token_auth_env(version, token)
    else:
        token, auth_env = None, {}
    if port is not None:
        check_port(port)
    return token, auth_env, (check_path(path) if path is not None else None)


def measured(server: ChromaServer) -> ChromaServer:
    """A started server with what it says it is and whether its token auth refuses a request
    without the token: refused (401/403), answered (2xx), or neither (None: we cannot tell)."""
    server.reported_version = _reported_version(server)
    if server.token:
        status = server.status(server.data_path())
        server.auth_enforced = True if status in (401, 403) else False if 200 <= status < 300 else None
    return server


def _fault(server: ChromaServer, what: str) -> HarnessFault:
    """One line (the CLI's rule) ending with the log's last lines; the longer tail rides along."""
    tail = server.log_tail()
    last = [ln.strip() for ln in tail.splitlines() if ln.strip()][-4:]
    fault = HarnessFault(f"{what}; its log ends: " + " | ".join(last) if last else f"{what}; its log is empty")
    fault.log_tail = tail  # type: ignore[attr-defined]
    return fault


def _exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _reported_version(server: ChromaServer) -> str | None:
    """What the server says it is (1.x servers answer "1.0.0" whatever their release)."""
    text = _http_text(f"{server.url}{server.api}/version")
    return text.strip().strip('"') if text else None
