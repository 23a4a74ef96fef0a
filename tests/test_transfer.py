"""``chroma-compat migrate``: directories and servers of real releases, both ways, verified by digests.

Stores are shaped like a real application's (one collection per kind of record, long structured ids,
str/int/float metadata, documents, batched upsert then a single-record update, a second database).
Servers are real (servers/launcher.py); the source's bytes are hashed before and after every run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.servers import launcher
from pytest_chroma_compat.snapshot.sources import tree_hash
from pytest_chroma_compat.transfer import endpoints, journal, move, verify
from pytest_chroma_compat.transfer.move import Mover

from .conftest import MID, NEW, OLD

DIM = 8


def app_records(n: int, seed: int, prefix: str = "IMAGE") -> dict:
    rng = np.random.default_rng(seed)
    ids = [
        f"{prefix}#{uuid.UUID(int=int(rng.integers(1 << 62)))}#RECEIPT#{i // 9:05d}#LINE#{i % 9:05d}" for i in range(n)
    ]
    return {
        "ids": ids,
        "embeddings": rng.random((n, DIM)),
        "documents": [f"line {i} total {i * 3} store {i % 5}" for i in range(n)],
        "metadatas": [
            {"receipt": i // 9, "line": i % 9, "amount": round(i * 0.25, 2), "store": f"s{i % 5}"} for i in range(n)
        ],
    }


def write_app(client, name: str, n: int, seed: int, metadata: dict | None = None) -> None:
    col = client.create_collection(name, metadata=metadata)
    rec = app_records(n, seed)
    for start in range(0, n, 100):  # batched upsert, as the app writes
        col.upsert(**{k: v[start : start + 100] for k, v in rec.items()})
    col.update(ids=[rec["ids"][0]], metadatas=[{"receipt": 0, "line": 0, "amount": 9.5, "store": "edited"}])


@pytest.fixture(scope="module")
def old_store(tmp_path_factory):
    """A 0.4.24 directory: two collections in the default database, one in another database."""
    path = tmp_path_factory.mktemp("transfer") / "store-0.4"
    with Release(OLD) as rel:
        client = rel.persistent(path)
        write_app(client, "receipt_lines", 450, 1)
        write_app(client, "receipt_words", 120, 2, metadata={"hnsw:space": "cosine", "app": "receipts"})
        client.ensure_database("acme", "archive")
        other = rel.persistent(path, tenant="acme", database="archive")
        write_app(other, "old_lines", 60, 3)
        other.close()
        client.close()
    return path


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_directory_to_a_server_of_another_era_carries_every_database_verified(old_store, tmp_path):
    before = tree_hash(old_store)
    with launcher.serve(NEW) as server:
        proc = run(str(old_store), server.url, "--verify", "--json", str(tmp_path / "m.json"))
        assert proc.returncode == 0, proc.stderr
        report = json.loads((tmp_path / "m.json").read_text())
        assert report["source"]["version"] == OLD and report["target"]["version"] == NEW
        assert report["copied"] == {"receipt_lines": 450, "receipt_words": 120, "acme/archive:old_lines": 60}
        by_label = {v["label"]: v for v in report["verified"]}
        lines = by_label["receipt_lines"]  # l2: bit-identical, so the digests match
        assert lines["ok"] and lines["source_digest"] == lines["target_digest"] and lines["release_changes"] == 0
        words = by_label["receipt_words"]
        assert words["ok"] and (words["source_space"], words["target_space"]) == ("cosine", "cosine")
        # what the server holds, read by another release's client (not the harness's path)
        with Release(NEW) as rel:
            other = rel.http(server.host, server.port, tenant="acme", database="archive")
            assert other.get_collection("old_lines").count() == 60
            got = rel.http(server.host, server.port).get_collection("receipt_words")
            assert got.metadata["app"] == "receipts"
    assert "verified: every" in proc.stderr.splitlines()[-1]
    assert tree_hash(old_store) == before  # the source directory is never written


@pytest.mark.slow
def test_server_to_a_new_directory_carries_cosine_and_names_the_release_own_rounding(tmp_path):
    target = tmp_path / "new-store"
    with launcher.serve(MID) as server, launcher.serve(NEW, auth="token") as other:
        with Release(MID) as rel:
            write_app(rel.http(server.host, server.port), "receipt_words", 1500, 4, metadata={"hnsw:space": "cosine"})
        proc = run(server.url, str(target), "--target-version", NEW, "--verify", "--json", str(tmp_path / "m.json"))
        # and server to server, the token passed through from the environment, never printed
        to_server = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_chroma_compat",
                "migrate",
                server.url,
                other.url,
                "--verify",
                "--target-header",
                "Authorization: Bearer $T",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "T": other.token},
        )
        assert to_server.returncode == 0, to_server.stderr
        assert "receipt_words: verified, 1500 records" in to_server.stdout and other.token not in to_server.stderr
    assert proc.returncode == 0, proc.stderr
    words = json.loads((tmp_path / "m.json").read_text())["verified"][0]
    assert words["target_space"] == "cosine" and words["target_count"] == 1500
    # 1.x returns cosine vectors rescaled by up to one float32 step, whoever writes them: named, not a failure
    assert words["release_changes"] > 0 and "its embedding" in words["release_examples"][0]
    # the source's digest, with those records as 1.5.9 stores them, is exactly the target's
    assert words["source_digest"] != words["target_digest"] == words["expected_digest"]
    assert "changed by chromadb 1.5.9's own write path" in proc.stdout
    with Release(NEW) as rel:
        assert rel.persistent(target).get_collection("receipt_words").count() == 1500


def test_verify_finds_a_record_the_move_changed(old_store, tmp_path):
    with Mover(str(old_store), str(tmp_path / "t"), target_version=MID, collections=["receipt_lines"]) as mover:
        mover.run()
        src = mover._open_source((None, None))[1]
        tgt = mover._open(mover.target, mover._release(MID, "target"), (None, None))
        victim = sorted(src.get_collection("receipt_lines").get(limit=5)["ids"])[2]
        tgt.get_collection("receipt_lines").update(ids=[victim], metadatas=[{"store": "tampered"}])
        info = {"space": "l2", "metadata": None}
        got = verify.collection(
            "receipt_lines",
            src.get_collection("receipt_lines"),
            tgt.get_collection("receipt_lines"),
            info,
            info,
            control=mover._control,
        )
    assert not got.ok and got.source_digest != got.target_digest
    assert any(f"record {victim!r}: metadata" in d and "tampered" in d for d in got.differences), got.differences


def test_a_target_that_already_holds_a_collection_is_refused_before_anything_is_written(old_store, tmp_path):
    target = tmp_path / "busy"
    with Release(MID) as rel:
        client = rel.persistent(target)
        client.create_collection("receipt_words").add(ids=["mine"], embeddings=[[1.0] * DIM])
        client.close()
    proc = run(str(old_store), str(target), "--target-version", MID)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    assert "already holds collection receipt_words" in proc.stderr and "Traceback" not in proc.stderr
    with Release(MID) as rel:
        client = rel.persistent(target)
        assert client.list_collection_names() == ["receipt_words"]  # nothing added, nothing merged
        assert client.get_collection("receipt_words").count() == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["https://127.0.0.1:1"], "https servers are not supported"),
        (["http://127.0.0.1:1"], "no Chroma server answers at http://127.0.0.1:1"),
        (["{file}"], "exists and is not a directory"),
        (["{source}/inside"], "is the source or inside it"),
        (["{source}"], "is the source or inside it"),
        (["http://127.0.0.1:1/api"], "give a server as http://host:port"),
        (["{new}", "--source-header", "Authorization"], "a header is 'Name: value'"),
        (["{new}", "--database", "nodatabase"], "--database takes TENANT/DATABASE"),
        (["{new}", "--target-version", "9.9.9"], "9.9.9"),
        (["{new}", "--collection", "nope"], "no collection named nope"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(old_store, tmp_path, args, words):
    (tmp_path / "a-file").write_text("x")
    fill = {"file": str(tmp_path / "a-file"), "source": str(old_store), "new": str(tmp_path / "new")}
    proc = run(str(old_store), *[a.format(**fill) for a in args], timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("chroma-compat: error:")


def test_an_existing_store_as_target_needs_its_release_named(old_store, tmp_path):
    proc = run(str(tmp_path / "x"), str(old_store))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    target = tmp_path / "existing"
    with Release(MID) as rel:
        rel.persistent(target).close()
    proc = run(str(old_store), str(target))
    assert proc.returncode == 2 and "pass --target-version" in proc.stderr


@pytest.mark.slow
def test_an_interrupted_move_resumes_where_it_stopped(tmp_path):
    source = tmp_path / "big"
    with Release(OLD) as rel:
        write_app(rel.persistent(source), "receipt_lines", 3000, 5)
    target = tmp_path / "resumed"
    jpath = journal.location(str(source.resolve()), str(target.resolve()))
    cmd = [
        sys.executable,
        "-m",
        "pytest_chroma_compat",
        "migrate",
        str(source),
        str(target),
        "--target-version",
        NEW,
        "--batch-size",
        "50",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    copied = 0
    while time.monotonic() < deadline and copied < 200:
        time.sleep(0.05)
        try:
            entry = json.loads(jpath.read_text())["collections"].get("receipt_lines") or {}
            copied = entry.get("copied", 0)
        except (OSError, ValueError):
            pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped_at = json.loads(jpath.read_text())["collections"]["receipt_lines"]["copied"]
    assert 0 < stopped_at < 3000
    done = run(str(source), str(target), "--target-version", NEW, "--verify", "--batch-size", "500")
    assert done.returncode == 0, done.stderr
    assert "resuming the run begun" in done.stderr and "0 of 1 collection(s) done" in done.stderr
    assert "receipt_lines: verified, 3000 records" in done.stdout
    assert not jpath.exists()  # a finished move leaves no journal


def test_a_1x_configuration_reaches_an_older_release_as_its_metadata(tmp_path):
    source = tmp_path / "one-x"
    with Release(NEW) as rel:
        client = rel.persistent(source)
        rel.run(
            "chroma_compat_transfer_ops:create",
            client=client,
            sys_path=[move.RELEASE_SIDE],
            name="by_config",
            configuration={"hnsw": {"space": "ip", "ef_construction": 128}},
        )
        client.get_collection("by_config").add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
        client.close()
    proc = run(
        str(source), str(tmp_path / "old"), "--target-version", MID, "--verify", "--json", str(tmp_path / "m.json")
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "m.json").read_text())["verified"][0]
    assert (got["source_space"], got["target_space"]) == ("ip", "ip")
    with Release(MID) as rel:
        assert rel.persistent(tmp_path / "old").get_collection("by_config").metadata["hnsw:construction_ef"] == 128


def test_settings_rules_cover_every_pair_of_eras():
    for src in ("0.4.24", "0.6.3", "1.0.0", "1.5.9"):
        for tgt in ("0.4.24", "0.6.3", "1.0.0", "1.5.9"):
            assert move.carry_rule(src, tgt) in ("configuration", "config-to-metadata", "metadata")
    info = {
        "metadata": {"app": "x"},
        "configuration": {
            "hnsw": {"space": "cosine", "ef_search": None},
            "spann": None,
            "embedding_function": {"name": "default"},
        },
    }
    assert move.settings_for("configuration", info) == {
        "metadata": {"app": "x"},
        "configuration": {"hnsw": {"space": "cosine"}},
    }
    assert move.settings_for("config-to-metadata", info) == {"metadata": {"app": "x", "hnsw:space": "cosine"}}


def test_a_1x_server_report_does_not_name_its_release(monkeypatch):
    version, why = endpoints.server_release("1.0.0", None, "target", "--target-version")
    assert version == endpoints.releases.versions()[-1] and "every 1.x server reports 1.0.0" in why
    assert endpoints.server_release("1.0.0", "1.0.21", "target", "--target-version")[0] == "1.0.21"
    with pytest.raises(endpoints.TransferError, match="not --target-version 0.6.3"):
        endpoints.server_release("1.0.0", "0.6.3", "target", "--target-version")
    with pytest.raises(endpoints.TransferError, match="reports chromadb 0.6.3, not --target-version 0.6.2"):
        endpoints.server_release("0.6.3", "0.6.2", "target", "--target-version")
    monkeypatch.setenv("MY_TOKEN", "s3cret")
    assert endpoints.parse_headers(["Authorization: Bearer $MY_TOKEN"]) == {"Authorization": "Bearer s3cret"}
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(endpoints.TransferError, match=r"reads \$MY_TOKEN, which is not set"):
        endpoints.parse_headers(["Authorization: $MY_TOKEN"])
