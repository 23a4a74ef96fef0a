"""The ``chroma_server`` fixture: real servers of any release for suites that test their own HTTP code.

    def test_my_client(chroma_server):
        server = chroma_server("0.6.3", auth="token")
        my_code.connect(server.url, headers=server.headers)

    @pytest.mark.chroma_versions("0.6.3", "1.5.9")
    def test_every_server(chroma_server):
        server = chroma_server()          # the marker's release

A factory, not a server, because a test may need several (a migration from
one release's server to another's) with its own options; every server it
started is stopped at the test's teardown, whatever the test did. A server
that cannot start fails the test with one line (the cause and its log's last
lines), not a traceback from inside the harness. Nothing is started, and
nothing of chromadb imported, until the factory is called.

``backend="docker"`` runs the release's official image instead; where no
Docker engine is reachable or the image is absent the test is skipped with
that one line (bad input still fails it: it is checked first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Callable

import pytest

if TYPE_CHECKING:
    from pytest_chroma_compat.servers.launcher import ChromaServer


@pytest.fixture
def chroma_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., ChromaServer]]:
    """``chroma_server(version=None, *, path=None, auth=None, port=None, timeout=60, backend="local",
    pull=False)`` -> a running server (``host``, ``port``, ``version``, ``url``, ``token``, ``headers``,
    ``backend``), stopped at teardown. With no version: the ``chroma_versions`` marker's release (or
    ``--chroma-from``)."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.servers import launcher
    from pytest_chroma_compat.servers.docker_backend import DockerUnavailable  # imports no docker SDK

    started: list[ChromaServer] = []

    def start(
        version: str | None = None,
        *,
        path: str | os.PathLike | None = None,
        auth: str | None = None,
        port: int | None = None,
        timeout: float = launcher.START_TIMEOUT,
        backend: str = "local",
        pull: bool = False,
    ) -> ChromaServer:
        __tracebackhide__ = True
        chosen = version or request.getfixturevalue("chroma_version")
        try:
            server = launcher.start(
                chosen, path=path, auth=auth, port=port, timeout=timeout, backend=backend, pull=pull
            )
        except DockerUnavailable as exc:  # no engine or no image: not the test's fault
            pytest.skip(str(exc))
        except CompatError as exc:
            pytest.fail(f"chroma_server({chosen!r}): {exc}", pytrace=False)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
