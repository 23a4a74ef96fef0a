"""The optional Docker backend: a release's official image ``chromadb/chroma:<version>``, same lifecycle.

    with servers.serve("0.6.3", backend="docker") as server:   # the same ChromaServer API
        server.url, server.token, server.backend                # ..., "docker"

Why it is built this way:
- The default backend needs no Docker, and the package must import without
  the ``docker`` SDK (an optional extra): it is imported inside functions only.
- Some users run Chroma only from its image: the image, not the PyPI package,
  is then the release under test. Where the image keeps its data, and what it
  needs to run as an ordinary user, differ by era: data (``IMAGES``), keyed by
  version specifiers and checked against Chroma's own Dockerfiles.
- Nothing is pulled unless asked (``pull=True``): an absent image, like an
  unreachable engine, is one line (``DockerUnavailable``), and the fixture
  turns it into a skip with that line.
- The container gets only the variables of its era's table row and token auth
  (``servers.TOKEN_AUTH``), never the host's environment or credentials. It
  runs as the calling user (a rootless engine's root already is that user), so
  the data it writes into ``path`` or the private scratch stays removable.
  Its port is published on 127.0.0.1 only; the engine must be this machine's.
- It must not outlive us: ``stop()`` stops and removes it; the servers of
  ``servers._LIVE`` are stopped at exit; and a small watcher process (our
  child, in its own session so Ctrl-C leaves it to us) removes the container
  when we die without stopping it (SIGKILL), or when a removal failed.
- The container's output is followed into the server's log file, so a start
  that fails is a HarnessFault ending with the release's own last words, as
  with the local backend.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pytest_chroma_compat.common.errors import CompatError, HarnessFault
from pytest_chroma_compat.engine import cache_dirs, leftovers, releases
from pytest_chroma_compat.servers.common import (
    _LIVE,
    _LIVE_LOCK,
    HOST,
    PORT_ATTEMPTS,
    START_TIMEOUT,
    STOP_GRACE,
    ChromaServer,
    _exit_words,
    _fault,
    checked_options,
    free_port,
    http_status,
    measured,
)

REPOSITORY = "chromadb/chroma"
CONTAINER_PORT = 8000  # EXPOSE 8000 in every era's Dockerfile; CHROMA_HOST_PORT=8000 (0.x), the 1.x default
PROBE_TIMEOUT = 3.0
CLIENT_TIMEOUT = 120.0
OWNER_LABEL = "pytest-chroma-compat.owner"  # the pid that started it
SERVER_LABEL = "pytest-chroma-compat.server"  # the server's scratch name: one per server, over port retries
_PORT_TAKEN = re.compile(r"port is already allocated|address already in use", re.I)

# Every era: no telemetry, a HOME an arbitrary uid can write (the image has no account for it).
COMMON_ENV: dict[str, str] = {"ANONYMIZED_TELEMETRY": "False", "HOME": "/tmp"}

# Each era's image, first match wins. Verified in chroma-core/chroma at the tags (git show <tag>:<file>):
# - 1.0.0: .github/workflows/_build_release_container.yml builds rust/cli/Dockerfile ("chroma run
#   /config.yaml", /config.yaml = rust/frontend/sample_configs/docker_single_node.yaml: persist_path
#   "/data"); 1.5.9: rust/Dockerfile, target cli, the same config; docker-compose.yml mounts /data.
# - 0.4.23 to 0.6.3: Dockerfile, WORKDIR /chroma, ENTRYPOINT bin/docker_entrypoint.sh (IS_PERSISTENT=1,
#   uvicorn with --log-config ${CHROMA_LOG_CONFIG}); persist_directory "./chroma" in chromadb/config.py,
#   so /chroma/chroma (docker-compose.yml: "indexed data are located in /chroma/chroma/"). The log config
#   writes chroma.log into the working directory, which only root can write: the config is named by
#   absolute path and the working directory is /tmp, so the server runs as the calling user.
# - before 0.4.23: CMD bin/docker_entrypoint.sh runs `pip install --force-reinstall chroma-hnswlib` at
#   every start (root and the network needed): not run.
IMAGES: tuple[dict, ...] = (
    {
        "versions": ">=1.0.0",
        "data_dir": "/data",
        "env": {},
        "source": "rust/cli/Dockerfile (1.0.0), rust/Dockerfile target cli (1.5.9); docker_single_node.yaml",
    },
    {
        "versions": ">=0.4.23,<1.0.0",
        "data_dir": "/chroma/chroma",
        "working_dir": "/tmp",
        "env": {
            "IS_PERSISTENT": "TRUE",
            "PERSIST_DIRECTORY": "/chroma/chroma",
            "CHROMA_LOG_CONFIG": "/chroma/chromadb/log_config.yml",
        },
        "source": "Dockerfile and bin/docker_entrypoint.sh (0.4.23 to 0.6.3); chromadb/config.py",
    },
    {
        "versions": "<0.4.23",
        "data_dir": "/chroma/chroma",
        "env": {},
        "refused": "its image's entrypoint reinstalls hnswlib with pip at every start (as root, from the "
        "network); use the default backend",
    },
)

# Runs in the host's Python, our child: argv = parent-pid server-key. When the parent is gone it
# removes every container labelled with the key; stop() kills it first when the removal succeeded.
_WATCHER = f"""
import os, sys, time
parent, key = int(sys.argv[1]), sys.argv[2]
while os.getppid() == parent:
    time.sleep(0.5)
try:
    import docker
    client = docker.from_env(timeout=60)
    for c in client.containers.list(all=True, filters={{"label": "{SERVER_LABEL}=" + key}}):
        c.remove(force=True, v=True)
except Exception:
    pass
"""


class DockerUnavailable(HarnessFault):
    """No SDK, no engine reachable, or the image is absent: one line, a skip in the fixture."""


def _row(version: str) -> dict:
    from packaging.specifiers import SpecifierSet

    row = next(r for r in IMAGES if version in SpecifierSet(r["versions"]))
    if row.get("refused"):
        raise CompatError(f"chromadb {version} cannot run on the docker backend: {row['refused']}")
    return row


def image_name(version: str) -> str:
    return f"{REPOSITORY}:{version}"


def data_dir(version: str) -> str:
    """Where ``version``'s image keeps its data (the mount point of ``path``)."""
    return _row(version)["data_dir"]


def container_spec(
    version: str,
    *,
    host_port: int,
    data: str | os.PathLike,
    auth_env: Mapping[str, str] | None = None,
    user: str | None = None,
    name: str | None = None,
    key: str = "",
) -> dict:
    """The keyword arguments of ``containers.create`` for ``version``: only what is written here
    reaches the container (no host variable), and its port is published on 127.0.0.1 only."""
    row = _row(version)
    spec: dict = {
        "image": image_name(version),
        "ports": {f"{CONTAINER_PORT}/tcp": (HOST, int(host_port))},
        "volumes": {str(Path(data)): {"bind": row["data_dir"], "mode": "rw"}},
        "environment": {**COMMON_ENV, **row["env"], **dict(auth_env or {})},
        "labels": {OWNER_LABEL: str(os.getpid()), SERVER_LABEL: key},
    }
    if name:
        spec["name"] = name
    if user:
        spec["user"] = user
    if row.get("working_dir"):
        spec["working_dir"] = row["working_dir"]
    return spec


def _engine_env() -> tuple[str, str, str]:
    get = os.environ.get
    return get("DOCKER_HOST", ""), get("DOCKER_TLS_VERIFY", ""), get("DOCKER_CERT_PATH", "")


def _where(host: str) -> str:
    if host:
        return f"DOCKER_HOST={host}"
    default = "npipe:////./pipe/docker_engine" if os.name == "nt" else "unix:///var/run/docker.sock"
    return f"the default socket {default} (DOCKER_HOST is unset)"


def docker_unavailable() -> str | None:
    """Why the docker backend cannot run here, in one line, or None. Cached per DOCKER_HOST."""
    return _probe(_engine_env())


@functools.cache
def _probe(engine: tuple[str, str, str]) -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed (pip install 'pytest-chroma-compat[docker]')"
    host = engine[0]
    parts = urlsplit(host) if "://" in host else None
    if parts is not None and parts.scheme in ("tcp", "http", "https", "ssh") and not _loopback(parts.hostname or ""):
        return (
            f"DOCKER_HOST={host} is not this machine: the docker backend publishes on {HOST} and mounts "
            "local directories"
        )
    try:
        client = docker.from_env(timeout=PROBE_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the SDK wraps requests' and the socket's errors in its own
        return f"no Docker engine is reachable at {_where(host)}: {_cause(exc)}"
    return None


def _loopback(hostname: str) -> bool:
    return hostname in ("localhost", "::1") or hostname.startswith("127.")


def _cause(exc: BaseException) -> str:
    """The operating system's words (Connection refused, No such file or directory) where there are."""
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    for link in reversed(seen):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror
    text = " ".join(str(exc).split()).replace("Error while fetching server API version: ", "")
    return text[:300] or type(exc).__name__


def _client():  # -> docker.DockerClient
    import docker

    try:
        return docker.from_env(timeout=CLIENT_TIMEOUT)
    except Exception as exc:
        raise DockerUnavailable(f"no Docker engine is reachable at {_where(_engine_env()[0])}: {_cause(exc)}") from None


def _ensure_image(client: object, image: str, pull: bool) -> None:
    import docker.errors

    try:
        client.images.get(image)  # type: ignore[attr-defined]
        return
    except docker.errors.ImageNotFound:
        if not pull:
            raise DockerUnavailable(f"docker image {image} is not present (docker pull {image})") from None
    except docker.errors.APIError as exc:
        raise DockerUnavailable(f"the Docker engine could not look up {image}: {_cause(exc)}") from None
    repository, tag = image.rsplit(":", 1)
    try:
        client.images.pull(repository, tag=tag)  # type: ignore[attr-defined]
    except docker.errors.APIError as exc:
        raise HarnessFault(f"docker could not pull {image}: {_cause(exc)}") from None


def _container_user(client: object) -> str | None:
    """The calling user, so the data the server writes stays ours; None on a rootless engine, whose
    root is the calling user (another uid there maps to a subordinate id that cannot write here)."""
    if not hasattr(os, "getuid"):
        return None
    try:
        options = client.info().get("SecurityOptions") or []  # type: ignore[attr-defined]
    except Exception:
        options = []
    if any("name=rootless" in str(option) for option in options):
        return None
    return f"{os.getuid()}:{os.getgid()}"


def watch_command(key: str) -> list[str]:
    """The watcher that removes ``key``'s containers once this process is gone (see the module doc)."""
    return [sys.executable, "-c", _WATCHER, str(os.getpid()), key]


@dataclass(eq=False)
class DockerChromaServer(ChromaServer):
    """A server in a container; ``stop()`` stops and removes it. ``pgid`` is None: no host process."""

    backend: ClassVar[str] = "docker"
    image: str = ""
    container_id: str | None = None
    key: str = ""
    _container: object = field(default=None, repr=False)
    _watcher: subprocess.Popen | None = field(default=None, repr=False)
    _follower: threading.Thread | None = field(default=None, repr=False)
    _unremoved: bool = field(default=False, repr=False)  # the engine refused a removal: the watcher stays

    def running(self) -> bool:
        return self._state().get("Status") == "running"

    def exit_status(self) -> int | None:
        return self._state().get("ExitCode")

    def _state(self) -> dict:
        if self._container is None:
            return {}
        try:
            self._container.reload()  # type: ignore[attr-defined]
            return dict(self._container.attrs.get("State") or {})  # type: ignore[attr-defined]
        except Exception:
            return {}

    def _follow(self) -> None:
        container, log = self._container, self.log

        def copy() -> None:
            with contextlib.suppress(OSError), open(log, "ab") as out:
                try:
                    for chunk in container.logs(stream=True, follow=True):  # type: ignore[attr-defined]
                        out.write(chunk)
                        out.flush()
                except Exception as exc:  # said in the log, where whoever reads it looks
                    out.write(
                        f"\n[pytest-chroma-compat] following the container's output failed: {_cause(exc)}\n".encode()
                    )

        self._follower = threading.Thread(target=copy, name=f"docker-log-{self.key}", daemon=True)
        self._follower.start()

    def _halt(self) -> bool:
        """Stop and remove the container; True when it is gone (or there was none)."""
        container, self._container = self._container, None
        if container is None:
            return True
        import docker.errors

        with contextlib.suppress(Exception):
            container.stop(timeout=int(STOP_GRACE))  # type: ignore[attr-defined]
        if self._follower is not None:
            self._follower.join(timeout=STOP_GRACE)
            self._follower = None
        for _ in range(3):
            try:
                container.remove(force=True, v=True)  # type: ignore[attr-defined]
                return True
            except docker.errors.NotFound:
                return True
            except Exception:
                time.sleep(1)
        self._unremoved = True
        return False

    def stop(self) -> None:
        """Stop and remove the container; if the engine refused, the watcher removes it when we exit."""
        self._halt()
        if not self._unremoved and self._watcher is not None:
            with contextlib.suppress(OSError):
                self._watcher.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watcher.wait(timeout=STOP_GRACE)
            self._watcher = None
        super().stop()  # unregisters it, removes the private scratch


def start(
    version: str,
    *,
    port: int | None = None,
    path: str | os.PathLike | None = None,
    auth: str | None = None,
    token: str | None = None,
    timeout: float = START_TIMEOUT,
    log: str | os.PathLike | None = None,
    pull: bool = False,
) -> DockerChromaServer:
    """:func:`servers.start` from the release's official image. Bad input is refused before the
    engine is asked; no engine or no image is :class:`DockerUnavailable` (pull it with ``pull=True``)."""
    if auth not in (None, "token"):
        raise CompatError(f"unknown auth {auth!r}; the one supported is 'token'")
    if timeout <= 0:
        raise CompatError(f"timeout must be positive, not {timeout}")
    version = releases.resolve(version)
    _row(version)  # eras without a usable image stop here
    token, auth_env, data = checked_options(version, auth, token, port, path)
    reason = docker_unavailable()
    if reason:
        raise DockerUnavailable(reason)
    client = _client()
    image = image_name(version)
    _ensure_image(client, image, pull)
    key = f"server-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # a name `leftovers` knows
    scratch = cache_dirs.scratch_dir() / key
    scratch.mkdir(parents=True)
    owner = leftovers.hold(scratch)
    data = data or scratch / "data"
    data.mkdir(parents=True, exist_ok=True)  # ours: an absent bind source would be created by root
    log_file = Path(log).expanduser().resolve() if log else scratch / "server.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    server = DockerChromaServer(
        version,
        HOST,
        port or 0,
        data,
        log_file,
        f"docker {image}",
        token=token,
        scratch=scratch,
        _owner=owner,
        image=image,
        key=key,
    )
    try:
        with _LIVE_LOCK:
            _LIVE.add(server)
        server._watcher = subprocess.Popen(
            watch_command(key),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        user = _container_user(client)
        for attempt in range(PORT_ATTEMPTS):
            server.port = port or free_port()
            spec = container_spec(
                version,
                host_port=server.port,
                data=data,
                auth_env=auth_env,
                user=user,
                name=f"chroma-compat-{key}-{attempt}",
                key=key,
            )
            container = client.containers.create(**spec)
            server._container, server.container_id = container, container.id
            try:
                container.start()
            except Exception as exc:
                server._halt()
                if port is None and attempt + 1 < PORT_ATTEMPTS and _PORT_TAKEN.search(str(exc)):
                    continue  # another process took the free port between our probe and the engine's bind
                raise HarnessFault(f"docker could not start {image}: {_cause(exc)}") from None
            server._follow()
            _wait(server, timeout)
            break
        return measured(server)
    except BaseException:
        server.stop()
        raise


def _wait(server: DockerChromaServer, timeout: float) -> None:
    heartbeat = f"{server.url}{server.api}/heartbeat"
    deadline = time.monotonic() + timeout
    next_look = 0.0
    while True:
        if time.monotonic() >= next_look:  # the engine is asked once a second, the heartbeat more often
            state = server._state()
            if state.get("Status") in ("exited", "dead"):
                code = int(state.get("ExitCode") or 0)
                server._halt()  # the log is complete once the container is gone
                cause = server.cause()
                oom = " (out of memory)" if state.get("OOMKilled") else ""
                raise _fault(
                    server,
                    f"chromadb {server.version} server ({server.launcher}) {_exit_words(code)}{oom} "
                    "before its heartbeat answered" + (f": {cause}" if cause else ""),
                )
            next_look = time.monotonic() + 1.0
        try:
            if http_status(heartbeat, timeout=2) == 200:
                return
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            pass  # the engine's proxy accepts and drops connections until the server listens
        if time.monotonic() > deadline:
            server._halt()
            raise _fault(
                server,
                f"chromadb {server.version} server ({server.launcher}) did not answer {heartbeat} "
                f"within {timeout:g} s; removed its container",
            )
        time.sleep(0.2)
