"""The worker: exact round trips across releases, and a host that survives every failure mode."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat import ChromaError, Release, WorkerCrashed, WorkerTimeout
from pytest_chroma_compat.engine import envs
from pytest_chroma_compat.engine.client import Worker

from .conftest import MID, NEW, OLD


def _records(n=50, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "ids": [f"rec-{i}-é" for i in range(n)],
        "embeddings": rng.standard_normal((n, dim)).astype(np.float32),
        "documents": [f"document {i} ✓" for i in range(n)],
        "metadatas": [{"i": i, "f": i / 7, "s": f"s{i}", "even": str(i % 2 == 0)} for i in range(n)],
    }


@pytest.mark.parametrize("old, new", [(OLD, NEW), (OLD, MID), (MID, NEW)])
def test_written_old_read_new_in_place(tmp_path, chroma_releases, old, new):
    rec = _records()
    with chroma_releases.get(old).persistent(tmp_path / "old") as client:
        col = client.create_collection("docs", metadata={"hnsw:space": "cosine"})
        col.add(**rec)
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    with chroma_releases.get(new).persistent(tmp_path / "new") as client:
        col = client.get_collection("docs")
        assert col.metadata["hnsw:space"] == "cosine"
        got = col.get(include=["embeddings", "documents", "metadatas"])
    order = [got["ids"].index(i) for i in rec["ids"]]
    assert sorted(got["ids"]) == sorted(rec["ids"])
    assert [got["documents"][j] for j in order] == rec["documents"]
    assert [got["metadatas"][j] for j in order] == rec["metadatas"]
    diff = np.abs(np.asarray(got["embeddings"], dtype=np.float32)[order] - rec["embeddings"]).max()
    assert diff <= 2.4e-7 * 2  # cosine data is re-rounded, never lost


def test_metadata_types_cross_the_pipe_exactly(tmp_path, chroma_releases):
    with chroma_releases.get(NEW).persistent(tmp_path) as client:
        col = client.create_collection("types")
        meta = {"b": True, "i": 1, "f": 1.0, "s": "1", "big": 2**53 + 1, "tiny": 5e-324}
        col.add(ids=["x"], embeddings=[[0.5, 0.25]], metadatas=[meta])
        got = col.get(ids=["x"], include=["metadatas", "embeddings"])
    assert got["metadatas"][0] == meta
    assert [type(got["metadatas"][0][k]) for k in meta] == [type(v) for v in meta.values()]
    assert got["embeddings"].tolist() == [[0.5, 0.25]]


def test_chromadb_exception_is_structured_and_worker_survives(tmp_path, chroma_releases):
    release = chroma_releases.get(MID)
    with release.persistent(tmp_path) as client:
        with pytest.raises(ChromaError) as info:
            client.get_collection("does-not-exist")
        assert info.value.type and "does-not-exist" in str(info.value) and info.value.traceback
        assert not info.value.base_exception
        assert release.call("ping") == "pong"


def test_base_exception_is_reported_not_fatal(chroma_releases):
    release = chroma_releases.get(NEW)
    with pytest.raises(ChromaError) as info:
        release.call("debug", action="raise_base", message="index out of bounds")
    assert info.value.base_exception
    assert info.value.qualified_type == "pyo3_runtime.PanicException"
    assert release.call("ping") == "pong"


def test_crash_is_reported_with_signal_and_stderr_then_recovered():
    release = Release(NEW)
    first = release.worker
    with pytest.raises(WorkerCrashed) as info:
        release.call("debug", action="abort")
    assert "SIGABRT" in str(info.value)
    assert first.proc.returncode is not None  # reaped, no zombie
    assert release.call("ping") == "pong"  # a fresh worker
    assert release.worker is not first
    release.close()
    assert release._worker is None and first.proc.poll() is not None


def test_hung_call_is_killed_after_its_timeout():
    worker = Worker(envs.ensure(NEW), timeout=2)
    try:
        with pytest.raises(WorkerTimeout, match="within 2 s") as caught:
            worker.call("debug", action="sleep", seconds=60)
        assert worker.proc.poll() is not None
        # where it was stuck: every thread's stack, kept in a file the message names
        stacks = Path(str(caught.value).rsplit("where it was stuck: ", 1)[1])
        try:
            assert "in debug" in stacks.read_text()  # the worker op that was sleeping
        finally:
            stacks.unlink()
        with pytest.raises(WorkerCrashed, match="gone"):
            worker.call("ping")
    finally:
        worker.close()


def test_stray_stdout_does_not_corrupt_the_protocol(chroma_releases):
    release = chroma_releases.get(OLD)
    assert release.call("debug", action="print", message='{"id": 999, "ok": true}') == "printed"
    assert release.call("ping") == "pong"
    import time

    deadline = time.monotonic() + 5
    while '{"id": 999' not in release.worker.stderr_tail(60) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '{"id": 999' in release.worker.stderr_tail(60)


def test_worker_is_sandboxed_away_from_home_and_cwd(chroma_releases, tmp_path):
    release = chroma_releases.get(NEW)
    home = release.run("os.path:expanduser", path="~")
    cwd = release.run("os:getcwd")
    assert home.startswith(str(release.worker.scratch)) and cwd.startswith(str(release.worker.scratch))
    assert release.run("os:getenv", key="ANONYMIZED_TELEMETRY") == "False"
    assert release.info()["chromadb"] == NEW


def test_export_streams_in_batches(tmp_path, chroma_releases):
    rec = _records(n=25)
    with chroma_releases.get(MID).persistent(tmp_path) as client:
        col = client.create_collection("docs")
        col.add(**rec)
        batches = list(col.export(batch_size=10))
    assert [len(b["ids"]) for b in batches] == [10, 10, 5]
    assert sorted(i for b in batches for i in b["ids"]) == sorted(rec["ids"])


def test_no_worker_outlives_its_release():
    release = Release(MID)
    pid = release.worker.proc.pid
    proc = release.worker.proc
    del release
    import gc

    gc.collect()
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_real_rust_panic_is_reported_and_the_worker_survives(chroma_releases):
    """Measured: 1.5.9 panics on a list value in collection metadata."""
    release = chroma_releases.get(NEW)
    with release.ephemeral() as client:
        with pytest.raises(ChromaError) as info:
            client.create_collection("panics", metadata={"tags": ["a"]})
        assert info.value.base_exception and info.value.qualified_type == "pyo3_runtime.PanicException"
        assert client.create_collection("survives").count() == 0


def test_a_real_segfault_is_reported_with_its_signal(tmp_path):
    """Measured: 1.5.9 segfaults adding to a collection with hnsw:M = 0."""
    release = Release(NEW)
    try:
        client = release.persistent(tmp_path)
        col = client.create_collection("segfaults", metadata={"hnsw:M": 0})
        with pytest.raises(WorkerCrashed, match="SIGSEGV during 'add'"):
            col.add(ids=["a", "b"], embeddings=[[1.0, 2.0], [2.0, 1.0]])
        assert release.call("ping") == "pong"
    finally:
        release.close()


@pytest.mark.parametrize("version", [OLD, "0.5.23", NEW])
def test_http_client_against_the_release_s_own_server(version, chroma_releases):
    """The worker's HTTP client, against `chroma run` of the same release on 127.0.0.1."""
    from pytest_chroma_compat.contracts.server_probes import serve

    release = chroma_releases.get(version)
    with serve(release) as server:
        with release.http(server.host, server.port) as client:
            col = client.create_collection("over-http")
            col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["x", "y"])
            assert col.count() == 2
            assert col.get(ids=["b"], include=["documents"])["documents"] == ["y"]


def test_a_prestarted_worker_is_taken_by_the_next_call_and_close_without_waiting_reaps_it():
    """Issue 27: ``prestart`` starts a fresh worker ahead of need (the next call takes it, not a second start);
    ``close(wait=False)`` stops it in the background and still leaves no process nor scratch behind."""
    import time

    release = Release(MID)
    release.prestart()
    spare = release._spare.result(timeout=300)
    assert spare.proc.poll() is None and release.current_worker() is None  # started, not yet taken
    assert release.call("ping") == "pong" and release.worker is spare
    release.prestart()  # a live worker: nothing to do
    assert release._spare is None
    release.close(wait=False)
    deadline = time.monotonic() + 60
    while (spare.dead != "closed" or spare.scratch.exists()) and time.monotonic() < deadline:  # the reaper's work
        time.sleep(0.05)
    assert spare.proc.poll() is not None and spare.dead == "closed" and not spare.scratch.exists()
    # a spare nobody took is stopped with its release
    release.prestart()
    untaken = release._spare.result(timeout=300)
    release.close()
    assert untaken.proc.poll() is not None and not untaken.scratch.exists()
