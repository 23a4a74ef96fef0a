"""Exit codes mean what they say: 1 only when a release misbehaves on the user's data.

Bad options, unwritable directories, the harness's own time limits and a store
whose own release cannot read it are 2, in one line naming the cause and the
fix, and are refused before any copy is made where they can be.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot.sources import tree_hash

from .conftest import NEW, OLD
from .trust import cli, one_line, readonly_dir

SEGMENT_FILES = ("data_level0.bin", "header.bin", "length.bin", "link_lists.bin")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """A real 1.5.9 store: 40 records in one L2 collection, long structured ids, an int and a str key."""
    root = tmp_path_factory.mktemp("exit-codes") / "chroma_data"
    with Release(NEW) as release, release.persistent(root) as client:
        col = client.create_collection("receipts", metadata={"hnsw:space": "l2"})
        col.upsert(
            ids=[f"IMAGE#{i:04d}#RECEIPT#00001#LINE#{i % 7:05d}" for i in range(40)],
            embeddings=[[float(i), float(i % 5), 1.0] for i in range(40)],
            documents=[f"line {i} total {i * 3}" for i in range(40)],
            metadatas=[{"line": i, "merchant": f"m{i % 4}"} for i in range(40)],
        )
    return root


def _validate(store: Path, *args: str, workdir: Path, **kw) -> tuple:
    before = tree_hash(store)
    proc = cli("validate", str(store), "--workdir", str(workdir), "--no-contracts", *args, **kw)
    assert tree_hash(store) == before, "the source changed"
    assert not list(workdir.glob("validate-*")) if workdir.is_dir() else True, "private copies left behind"
    return proc


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--to", "1.5.9", "--timeout", "0"], "--timeout must be a positive"),
        (["--to", "1.5.9", "--timeout", "-5"], "--timeout must be a positive"),
        (["--to", "1.5.9", "--timeout", "nan"], "--timeout must be a positive"),
        (["--to", "1.5.9", "--timeout", "inf"], "--timeout must be a positive"),
        (["--to", ""], "--to needs a release"),
        (["--to", "1.5.9", "--from", " "], "--from needs a release"),
        (["--to", "1.5.9", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--to", "9.9.9"], "9.9.9"),
        (["--to", "1.5.9", "--path", "sideways"], "invalid choice"),
    ],
)
def test_bad_options_are_refused_before_any_work(small_store, tmp_path, args, needle):
    workdir = tmp_path / "work"
    proc = _validate(small_store, *args, workdir=workdir)
    if needle == "invalid choice":  # argparse's own usage error: exit 2, usage line + message
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
        return
    one_line(proc, 2, needle)
    assert not workdir.exists() or not any(workdir.iterdir()), "work started before the options were checked"


@pytest.mark.parametrize("how", ["readonly-folder", "is-a-directory", "inside-source", "same-file", "parent-is-file"])
def test_report_path_that_cannot_be_written_is_refused_up_front(small_store, tmp_path, how):
    workdir = tmp_path / "work"
    (tmp_path / "a-file").write_text("x")
    if how == "readonly-folder":
        with readonly_dir(tmp_path / "ro") as ro:
            proc = _validate(small_store, "--to", NEW, "--json", str(ro / "report.json"), workdir=workdir)
        one_line(proc, 2, "cannot write report", "choose a writable place")
    elif how == "is-a-directory":
        proc = _validate(small_store, "--to", NEW, "--markdown", str(tmp_path), workdir=workdir)
        one_line(proc, 2, "it is a directory")
    elif how == "inside-source":
        proc = _validate(small_store, "--to", NEW, "--json", str(small_store / "report.json"), workdir=workdir)
        one_line(proc, 2, "inside the source")
    elif how == "same-file":
        proc = _validate(
            small_store, "--to", NEW, "--json", str(tmp_path / "r"), "--junit", str(tmp_path / "r"), workdir=workdir
        )
        one_line(proc, 2, "same file")
    else:
        proc = _validate(small_store, "--to", NEW, "--junit", str(tmp_path / "a-file" / "r.xml"), workdir=workdir)
        one_line(proc, 2, "not a directory")
    assert not workdir.exists() or not any(workdir.iterdir())


def test_unwritable_workdir_is_exit_2_naming_the_fix(small_store, tmp_path):
    with readonly_dir(tmp_path / "ro") as ro:
        proc = _validate(small_store, "--to", NEW, workdir=ro / "work")
    one_line(proc, 2, "cannot write to the work directory", "--workdir")
    (tmp_path / "file").write_text("x")
    proc = _validate(small_store, "--to", NEW, workdir=tmp_path / "file")
    one_line(proc, 2, "cannot write to the work directory", "--workdir")


@pytest.mark.parametrize("how", ["readonly", "a-file"])
def test_unwritable_cache_home_is_exit_2_naming_the_fix(small_store, tmp_path, how):
    if how == "a-file":
        home = tmp_path / "home-file"
        home.write_text("x")
        proc = cli("env", "list", env={"CHROMA_COMPAT_HOME": str(home)})
        one_line(proc, 2, "cannot write to the cache directory", "CHROMA_COMPAT_HOME")
        proc = _validate(small_store, "--to", NEW, workdir=tmp_path / "work", env={"CHROMA_COMPAT_HOME": str(home)})
        one_line(proc, 2, "cannot write to the cache directory", "CHROMA_COMPAT_HOME")
        return
    with readonly_dir(tmp_path / "ro") as ro:
        proc = cli("env", "ensure", NEW, env={"CHROMA_COMPAT_HOME": str(ro)})
    one_line(proc, 2, "cannot write to the cache directory", "CHROMA_COMPAT_HOME")


def test_harness_timeout_is_exit_2_not_a_verdict(small_store, tmp_path, canary):
    """--timeout is the harness's limit: a call that outlives it says nothing about the upgrade."""
    proc = _validate(small_store, "--to", NEW, "--timeout", "0.001", workdir=tmp_path / "work")
    line = one_line(proc, 2, "did not answer", "--timeout")
    assert "NOT safe" not in proc.stdout + line
    canary.assert_untouched()


@pytest.mark.parametrize("path", ["in-place", "export-import"])
def test_a_store_its_own_release_cannot_read_is_exit_2(tmp_path, path):
    """Damage the source release trips over is "could not validate", as the README promises, never "not safe"."""
    store = tmp_path / "damaged"
    with Release(OLD) as release, release.persistent(store) as client:  # 0.4.24 persists its index at 10 records
        col = client.create_collection("receipts", metadata={"hnsw:batch_size": 10, "hnsw:sync_threshold": 10})
        col.add(ids=[f"r{i}" for i in range(30)], embeddings=[[float(i), 1.0] for i in range(30)])
    segments = [p for p in store.iterdir() if p.is_dir() and (p / "header.bin").exists()]
    assert segments, sorted(os.listdir(store))
    for seg in segments:
        for name in SEGMENT_FILES:
            (seg / name).write_bytes(b"\xff" * 7)  # not an index any release can load
    proc = _validate(store, "--to", OLD, "--from", OLD, "--path", path, workdir=tmp_path / "work")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "the store is damaged" in proc.stdout + proc.stderr


def test_a_worker_killed_from_outside_is_exit_2_not_a_verdict(tmp_path, canary):
    """SIGKILL we did not send (the kernel's OOM killer, an operator) says nothing about the upgrade."""
    import signal

    from fixtures import stores

    from .test_trust_interrupts import _finish, _start, _validate_args, _wait_for, _workers_of

    with Release(NEW) as release:
        store = stores.sample(release, tmp_path / "store", records=1500)
    before = tree_hash(store)
    proc = _start(*_validate_args(store, "--workdir", str(tmp_path / "work")))

    def started(pid: int) -> bool:  # chromadb imported: past the start, which is retried when a worker dies in it
        try:
            return "chromadb_rust_bindings" in Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return False

    # the source's and the target's workers come first; validate may prestart the rollback's worker later
    workers = _wait_for(
        lambda: (
            len(_workers_of(proc.pid)) >= 2
            and all(map(started, sorted(_workers_of(proc.pid))[:2]))
            and sorted(_workers_of(proc.pid))[:2]
        ),
        120,
        "two workers with chromadb imported",
    )
    time.sleep(0.2)
    os.kill(workers[-1], signal.SIGKILL)
    done = _finish(proc, timeout=120)
    one_line(done, 2, "killed from outside", "out of memory")
    assert "NOT safe" not in done.stdout
    assert tree_hash(store) == before
    assert not any((tmp_path / "work").glob("validate-*"))
    canary.assert_untouched()


def test_a_source_that_changes_during_validation_is_exit_2(small_store, tmp_path):
    """A live writer that holds no lock while we look still moves the source: the copy may be torn, so there is
    no verdict (was exit 1, as if a release had misbehaved)."""
    import shutil

    from pytest_chroma_compat.snapshot.validate import validate

    store = tmp_path / "live"
    shutil.copytree(small_store, store)
    touched = []

    def progress(label: str, done: int, total: int) -> None:
        if label.startswith("compare") and not touched:
            (store / "chroma.sqlite3").touch()  # what a writer's checkpoint does to the file's mtime
            touched.append(label)

    result = validate(str(store), NEW, workdir=tmp_path / "work", contracts=False, progress=progress)
    assert touched and result.exit_code == 2, result.summary
    assert result.source["unchanged"] is False and "quiescent snapshot" in result.summary


def test_an_s3_endpoint_gone_at_the_end_is_exit_2_not_changed(small_store, tmp_path, monkeypatch):
    """The last hash cannot be taken: the source cannot be shown unchanged, which is not "it changed" (was exit 1)."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    from pytest_chroma_compat.snapshot.validate import validate

    from .s3_server import _free_port

    for k, v in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    stopped = []
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket="bkt")
        for p in small_store.rglob("*"):
            if p.is_file():
                s3.upload_file(str(p), "bkt", "store/" + p.relative_to(small_store).as_posix())

        def progress(label: str, done: int, total: int) -> None:
            if label.startswith("compare") and not stopped:
                server.stop()  # the endpoint goes away after the copy was made and verified
                stopped.append(label)

        result = validate(
            "s3://bkt/store/",
            NEW,
            endpoint_url=f"http://127.0.0.1:{port}",
            contracts=False,
            progress=progress,
            s3_timeout=1,
            workdir=tmp_path / "work",
        )
    finally:
        if not stopped:
            server.stop()
    assert stopped and result.exit_code == 2, result.summary
    assert result.source["unchanged"] is None and result.source["hash_after"].startswith("unavailable")
    assert [c.status for c in result.checks if c.name == "source-unchanged"] == ["error"]
