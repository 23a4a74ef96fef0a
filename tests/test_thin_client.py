"""The thin ``chromadb-client`` package as a skew client: environments of its own, and real cells.

What the thin package is was measured, not read (2026-12-02, Python 3.11): chromadb's source
tree with ``chromadb/is_thin_client.py`` added and the server's dependencies left out (no
FastAPI, uvicorn, hnswlib, onnxruntime or Rust bindings), so ``chromadb.server.fastapi`` does
not import and PersistentClient/EphemeralClient refuse ("http-only client mode"). Its cells
are what these packages did against real servers: the same answers as the full package of the
same release (a 0.6 client cannot read the collection a 1.x server returns: ``KeyError: '_type'``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from pytest_chroma_compat.common.errors import ChromaError, CorruptEnvironment, UnknownRelease
from pytest_chroma_compat.engine import envs, pins, releases
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.servers import skew

from .conftest import MID, NEW

OPS = list(skew.OPERATIONS)
# What a server needs and the thin package leaves out; each import must fail inside a thin environment.
SERVER_SIDE = ("fastapi", "uvicorn", "hnswlib", "onnxruntime", "chromadb_rust_bindings", "chromadb.server.fastapi")
PROBE = """
import importlib, json, sys
import chromadb
out = {"version": chromadb.__version__, "missing": {}}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        out["missing"][name] = type(exc).__name__
try:
    chromadb.PersistentClient(path=sys.argv[1])
    out["persistent"] = "opened"
except Exception as exc:
    out["persistent"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def probe(env: envs.Environment, tmp_path) -> dict:
    """Run PROBE with the environment's own interpreter, kept off the user's home like a worker."""
    done = subprocess.run(
        [str(env.interpreter), "-c", PROBE, str(tmp_path / "store"), *SERVER_SIDE],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=envs.hermetic_environ(tmp_path / "scratch"),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", [MID, NEW])
def test_a_thin_environment_has_its_own_key_and_no_server(version, tmp_path):
    env = envs.ensure(version, kind="client")
    full = envs.ensure(version)
    assert (env.kind, env.package, full.kind) == ("client", "chromadb-client", "full")
    assert env.key == envs.env_key(version, pins.for_version(version, kind="client"), "client")
    assert env.key.startswith(f"chromadb-client-{version}-{envs.python_tag()}-") and env.path != full.path
    assert full.key.startswith(f"chromadb-{version}-{envs.python_tag()}-")
    assert env.packages["chromadb-client"] == version and "chromadb" not in env.packages
    assert full.packages["chromadb"] == version and "chromadb-client" not in full.packages
    # posthog<6 was measured to be needed by the thin 0.5.10-1.0.13 too (engine/pins.toml); 1.5.9 pins it itself
    assert [p["id"] for p in env.pins] == (["posthog-5"] if version == MID else [])
    if version == MID:
        assert int(env.packages["posthog"].split(".")[0]) < 6
    assert envs.ensure(version, kind="client").path == env.path  # reused, not rebuilt

    seen = probe(env, tmp_path)
    assert seen["version"] == version
    assert seen["missing"] == dict.fromkeys(SERVER_SIDE, "ModuleNotFoundError")
    assert seen["persistent"].startswith("RuntimeError: Chroma is running in http-only client mode")
    assert not (tmp_path / "store").exists()

    with Release(version, kind="client") as release:
        assert repr(release) == f"Release({version!r}, kind='client')"
        info = release.info()
        assert info["chromadb"] == version and info["executable"].startswith(str(env.path))
        assert info["hnswlib"] is None
        with pytest.raises(ChromaError, match="http-only client mode"):
            release.persistent(tmp_path / "store")


def test_thin_clients_against_real_servers(tmp_path):
    thin_old = Release(MID, kind="client")
    try:
        cells = [skew.run_cell(thin_old, MID), skew.run_cell(thin_old, NEW)]
    finally:
        thin_old.close()
    for cell in cells:
        assert cell.client == f"client-{MID}"
        assert cell.client_info["distribution"] == {"name": "chromadb-client", "version": MID}
        assert [op["op"] for op in cell.operations] == OPS
        assert cell.server_info["packages"]["chromadb"] == cell.server
    same, newer = cells
    assert same.verdict == "compatible", same.failure
    assert {op["op"]: op["value"] for op in same.operations}["get_where"] == ["a", "d"]
    # as the full 0.6.3 client: the 1.x server makes the collection, the 0.6 client cannot read the answer
    assert newer.verdict == "incompatible"
    assert newer.failure.startswith(
        "create_collection: KeyError: '_type' (the server answered HTTP 200 to POST "
        "/api/v2/tenants/default_tenant/databases/"
    )
    page = skew.markdown(skew.Skew([f"client-{MID}"], [MID, NEW], cells))
    assert f"| chromadb-client {MID} | compatible | **incompatible**: create_collection: KeyError: '_type'" in page

    # the whole run, as `chroma-compat skew --clients client-1.5.9 --servers 1.5.9` does it
    result = skew.run([f"client-{NEW}"], [NEW])
    assert result.clients == [f"client-{NEW}"] and result.exit_code == 0
    (cell,) = result.cells
    assert cell.verdict == "compatible", cell.failure
    assert cell.client_info["distribution"] == {"name": "chromadb-client", "version": NEW}
    skew.write(result, markdown_path=str(tmp_path / "skew.md"), json_path=str(tmp_path / "skew.json"))
    assert f"| chromadb-client {NEW} | compatible |" in (tmp_path / "skew.md").read_text()
    doc = json.loads((tmp_path / "skew.json").read_text())
    assert (
        doc["clients"] == [f"client-{NEW}"]
        and doc["cells"][0]["client_info"]["distribution"]["name"] == "chromadb-client"
    )


def test_a_release_without_a_thin_package_is_one_line_before_any_work():
    first = releases.thin_versions()[0]
    assert first == "0.5.10"
    words = f"chromadb 0.4.24 published no chromadb-client package; the first is {first}"
    for attempt in (
        lambda: envs.ensure("0.4.24", kind="client"),
        lambda: Release("0.4.24", kind="client"),
        lambda: skew.parse_client("client-0.4.24"),
        lambda: skew.run(["client-0.4.24"], [MID]),
    ):
        with pytest.raises(UnknownRelease) as caught:
            attempt()
        assert str(caught.value) == words and caught.value.exit_code == 2
    with pytest.raises(
        UnknownRelease,
        match="chromadb 1.0.2 published no chromadb-client package; the nearest that did: 1.0.0 and 1.0.3",
    ):
        skew.parse_client("client-1.0.2")
    with pytest.raises(UnknownRelease, match="unknown chromadb release '7.7.7'"):
        skew.parse_client("client-7.7.7")
    # spellings: a bare release is the full package, client-<anything resolve takes> the thin one
    assert skew.client_names(["0.6,client-0.6", "client-latest", MID]) == [
        MID,
        f"client-{MID}",
        f"client-{releases.thin_versions()[-1]}",
    ]
    assert skew.client_label(f"client-{MID}") == f"chromadb-client {MID}" and skew.client_label(MID) == MID


def test_full_environment_keys_did_not_change():
    """Thousands of cached observations are keyed by these: the key of 0.6.3's environment as built before kinds."""
    assert envs.env_key(MID, pins.for_version(MID)) == f"chromadb-{MID}-{envs.python_tag()}-104b1eeab1"
    assert [r.id for r in pins.for_version("0.5.10")] == ["posthog-5", "fastapi-0.131"]
    assert [r.id for r in pins.for_version("0.5.10", kind="client")] == ["posthog-5"]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uv layout")
def test_prune_keeps_a_thin_environment_and_a_fat_one_is_broken(private_home):
    env = envs.ensure(NEW, kind="client")
    assert envs.prune() == [] and env.path.exists()  # its key is current for its kind: not outdated
    site = next(env.path.glob("lib/python*/site-packages"))
    (site / f"chromadb-{NEW}.dist-info").mkdir()  # what `pip install chromadb` into it leaves
    with pytest.raises(
        CorruptEnvironment,
        match=re.escape(f"is no longer thin: chromadb-{NEW}.dist-info); run ")
        + re.escape(f"`chroma-compat env ensure --rebuild client-{NEW}`"),
    ):
        envs.ensure(NEW, kind="client")
    assert envs.ensure(NEW, kind="client", rebuild=True).kind == "client"


def test_env_ensure_names_a_thin_environment_as_skew_does():
    from .conftest import run_cli

    proc = run_cli("env", "ensure", "client-0.6.3")
    assert proc.returncode == 0 and proc.stdout.startswith("chromadb-client 0.6.3\t"), proc.stderr
    bad = run_cli("env", "ensure", "0.6.3", "client-0.4.24")
    assert bad.returncode == 2 and bad.stdout == "", bad.stdout  # refused before building anything
    assert "published no chromadb-client package; the first is 0.5.10" in bad.stderr
