"""The fastapi-0.131 pin: a 0.4/0.5 server answers its own clients as it did at release time.

Those clients POST JSON without a Content-Type; FastAPI 0.132+ (what pip resolves today) answers
such a body HTTP 422 on every route that declares a pydantic body. The range was measured by
serving each release to its own HttpClient (engine/pins.toml header); these tests keep the boundaries
and show, on a real server, both that the pin fixes it and that it is still needed.
"""

from __future__ import annotations

import http.client
import json
import sys

import pytest
from packaging.version import Version

from pytest_chroma_compat.engine import envs, pins
from pytest_chroma_compat.servers import launcher

RULE = "fastapi-0.131"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="servers are found through /proc")


def _covered(version: str) -> bool:
    return RULE in {r.id for r in pins.for_version(version)}


@pytest.mark.parametrize("version", ["0.4.13", "0.4.24", "0.5.4", "0.5.15", "0.5.16", "0.5.23"])
def test_the_servers_that_declare_pydantic_bodies_get_the_pin(version):
    assert _covered(version)


@pytest.mark.parametrize("version", ["0.4.12", "0.5.0", "0.5.3", "0.6.0", "0.6.3", "1.0.0", "1.5.9"])
def test_servers_measured_to_work_without_it_keep_their_environment(version):
    """0.4.0-0.4.12 pin fastapi<0.100 themselves; 0.5.0-0.5.3, 0.6 and 1.x parse every body themselves."""
    assert not _covered(version)


def _post_without_content_type(server: launcher.ChromaServer) -> tuple[int, str]:
    """What a 0.5.23 HttpClient sends to create a collection: JSON, and no Content-Type header."""
    body = json.dumps({"name": "pinned", "metadata": None, "get_or_create": False, "configuration": None}).encode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.putrequest("POST", launcher.V2_COLLECTIONS)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_a_pinned_0_5_23_server_accepts_what_its_clients_send():
    assert Version(envs.ensure("0.5.23").packages["fastapi"]) < Version("0.132")
    with launcher.serve("0.5.23") as server:
        status, body = _post_without_content_type(server)
    assert status == 200, body
    assert json.loads(body)["name"] == "pinned"


def test_without_the_pin_the_same_request_is_refused(monkeypatch):
    """The rule is still needed: the environment pip resolves today refuses the request."""
    without = [r for r in pins.for_version("0.5.23") if r.id != RULE]
    monkeypatch.setattr(pins, "for_version", lambda version, python=None: without)
    assert Version(envs.ensure("0.5.23").packages["fastapi"]) >= Version("0.132")
    with launcher.serve("0.5.23") as server:
        status, body = _post_without_content_type(server)
    assert status == 422, body
    assert "Input should be a valid dictionary or object to extract fields from" in body
