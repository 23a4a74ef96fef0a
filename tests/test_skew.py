"""The skew matrix on real releases: each client's own HttpClient against a fresh real server.

The expected cells are what these releases did when measured (docs/skew.md), not what
any changelog says: a 0.6 client cannot read the collection a 1.x server returns
(``KeyError: '_type'`` on the configuration JSON) although the server created it.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from pytest_chroma_compat.servers import skew

from .test_servers import cli_command

OPS = list(skew.OPERATIONS)


@pytest.mark.slow
def test_a_two_by_two_matrix_gives_real_cells_with_real_errors(tmp_path):
    md, js = tmp_path / "skew.md", tmp_path / "skew.json"
    done = subprocess.run(
        cli_command(
            "skew", "--clients", "0.6.3,1.5.9", "--servers", "0.6.3", "1.5.9", "--markdown", str(md), "--json", str(js)
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 4  # one line per cell, as it is measured
    assert "4 cells in" in done.stderr and "0 could not check" in done.stderr
    doc = json.loads(js.read_text())
    assert doc["clients"] == ["0.6.3", "1.5.9"] and doc["servers"] == ["0.6.3", "1.5.9"]
    cells = {(c["client"], c["server"]): c for c in doc["cells"]}
    assert len(cells) == 4
    for cell in cells.values():
        assert [op["op"] for op in cell["operations"]] == OPS  # every operation has a row, run or skipped
        assert cell["server_info"]["packages"]["chromadb"] == cell["server"]

    for pair in [("1.5.9", "1.5.9"), ("0.6.3", "0.6.3"), ("1.5.9", "0.6.3")]:
        cell = cells[pair]
        assert cell["verdict"] == "compatible", cell["failure"]
        assert all(op["ok"] for op in cell["operations"])
        assert {op["op"]: op["value"] for op in cell["operations"]}["get_where"] == ["a", "d"]

    old_client = cells[("0.6.3", "1.5.9")]
    assert old_client["verdict"] == "incompatible"
    assert old_client["failure"].startswith(
        "create_collection: KeyError: '_type' (the server answered HTTP 200 "
        "to POST /api/v2/tenants/default_tenant/databases/"
    )
    ops = {op["op"]: op for op in old_client["operations"]}
    assert ops["connect"]["ok"] and ops["heartbeat"]["ok"]
    assert ops["version"]["value"] == "1.0.0"  # what a 1.5.9 server says it is
    assert ops["create_collection"]["error"]["http"]["status"] == 200
    assert '"name":"skew_probe"' in ops["create_collection"]["error"]["http"]["body"]  # the server made it
    assert ops["add"]["ok"] is None and ops["add"]["skipped"] == "needs create_collection"

    text = md.read_text()
    assert "| client \\ server | 0.6.3 | 1.5.9 |" in text
    assert "| 0.6.3 | compatible | **incompatible**: create_collection: KeyError: '_type'" in text
    assert "| 1.5.9 | compatible | compatible |" in text
    assert "[skew.json](skew.json)" in text

    # token auth, measured on each server: 0.6.3 refuses a request without the token, 1.5.9 answers it
    assert doc["token_auth"]["0.6.3"]["enforced"] is True and doc["token_auth"]["0.6.3"]["without_token"] == 403
    assert doc["token_auth"]["1.5.9"]["enforced"] is False and doc["token_auth"]["1.5.9"]["without_token"] == 200
    assert "| 0.6.3 | refused (HTTP 403; 200 with the token) |" in text
    assert "| 1.5.9 | **answered (HTTP 200): the configured token auth is ignored**" in text


def test_error_descriptions_put_the_server_answer_before_the_client_words():
    refused = {
        "type": "ValueError",
        "message": "Could not connect to tenant default_tenant.",
        "http": {
            "method": "GET",
            "path": "/api/v1/tenants/default_tenant",
            "status": 410,
            "body": '{"error":"Unimplemented","message":"The v1 API is deprecated."}',
        },
    }
    assert skew.describe_error("connect", refused) == (
        'connect: HTTP 410 GET /api/v1/tenants/default_tenant {"error":"Unimplemented","message":"The v1 API is '
        'deprecated."}: ValueError: Could not connect to tenant default_tenant.'
    )
    assert (
        skew.describe_error("count", {"type": "Wrong", "message": "count: got 3, expected 4"})
        == "count: Wrong: count: got 3, expected 4"
    )
    assert skew.describe_error("add", {"type": "E", "message": "x" * 50}, limit=10) == "add: E: xxxxxxxxxx..."


def test_bad_input_is_one_line_before_any_server_starts(tmp_path):
    for args, words in [
        (["--clients", "0.6.3", "--servers", "7.7.7"], "unknown chromadb release '7.7.7'"),
        (["--clients", "0.6.3", "--servers", "1.5.9", "--json", str(tmp_path)], "is a directory"),
    ]:
        done = subprocess.run(cli_command("skew", *args), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
