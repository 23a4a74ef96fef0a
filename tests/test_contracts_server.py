"""Server contracts on real servers: each release's own `chroma run` on 127.0.0.1, token auth
configured the way each era documents it, an unauthenticated request sent with plain urllib.

The expected values are what these releases answered when measured
(`chroma-compat contracts --measure`, docs/contracts.md), not what the log says.
Every server is started on a free port, waited for at most 60 s and killed with
its process group; the tests check that nothing is left listening.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from pytest_chroma_compat.contracts import measure, server_probes
from pytest_chroma_compat.contracts.server_probes import HOST, data_status, serve
from pytest_chroma_compat.engine.client import Release

MEASURED = {
    "0.5.23": {"old_style_env": "200", "new_style_env": "403"},
    "1.5.9": {"old_style_env": "200", "new_style_env": "200"},
}


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("server-contracts-cache")


@pytest.mark.parametrize("version", sorted(MEASURED))
def test_token_auth_on_a_real_server(version, cache):
    started = time.monotonic()
    obs = measure.observe(version, ["server_token_auth"], cache=cache)
    assert obs.failures == {}
    assert obs.values["server_token_auth"] == MEASURED[version]
    assert time.monotonic() - started < 180  # two bounded server starts
    # cached per (environment, server_probes.py hash): a second look starts nothing
    release = Release(version)
    again = measure.observe(release, ["server_token_auth"], cache=cache)
    assert again.cached and release._worker is None
    stored = json.loads(measure._cache_file(version, cache, server=True).read_text())
    assert stored["server_probes_sha256"] == measure.server_probe_hash()


def test_a_1x_server_configured_for_token_auth_serves_anyone():
    """The 1.0 log entry: built-in auth is gone; the 0.5+ variables are ignored, data is open."""
    release = Release("1.5.9")
    with serve(release, server_probes.AUTH_ENV["new_style_env"]) as server:
        port = server.port
        assert server.launcher == "chroma run"
        assert server.status("/api/v1/collections") == "410"  # the v1 API is gone in 1.x
        assert data_status(server) == "200"
        assert server.status("/api/v2/heartbeat") == "200"
    assert not _listening(port)


def test_a_05_server_refuses_without_the_token_and_accepts_it():
    release = Release("0.5.23")
    with serve(release, server_probes.AUTH_ENV["new_style_env"]) as server:
        port = server.port
        assert data_status(server) == "403"
        assert data_status(server, {"Authorization": "Bearer test-token"}) == "200"
        assert server.status("/api/v1/heartbeat") == "200"  # the heartbeat stays public
    assert not _listening(port)


def test_the_server_is_killed_when_the_body_raises():
    release = Release("0.5.23")
    with pytest.raises(RuntimeError):
        with serve(release, {}) as server:
            port = server.port
            raise RuntimeError("boom")
    assert not _listening(port)


def test_a_server_that_exits_at_start_up_is_reported():
    release = Release("0.5.23")
    with pytest.raises(server_probes.ServerDidNotStart, match="exited with status"):
        with serve(
            release,
            {"CHROMA_SERVER_AUTHN_PROVIDER": "no.such.Provider", "CHROMA_SERVER_AUTHN_CREDENTIALS": "test-token"},
        ):
            pass
