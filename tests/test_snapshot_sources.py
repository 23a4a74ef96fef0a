"""materialize(): private copies of a store from a directory, an archive or S3.

S3 is exercised over real HTTP against moto's server mode in a subprocess (not
moto's in-process mocks), so the requests, retries, streaming and error
mapping are boto3's real ones. Stores are small synthetic trees shaped like a
Chroma persistent directory (chroma.sqlite3 + one segment dir); chromadb is not
needed here.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.snapshot import Materialized, SourceError, materialize, tree_hash

from .s3_server import _free_port, moto_auth, upload_tree, user_without_policy

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

SEGMENT = "6f2a1c7e-0b7d-4f1e-9a51-3c1d2b9e8f00"


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def store(tmp_path) -> Path:
    """A fake persistent directory: sqlite db, one HNSW-like segment dir, a nested file."""
    root = tmp_path / "chroma_data"
    seg = root / SEGMENT
    seg.mkdir(parents=True)
    con = sqlite3.connect(root / "chroma.sqlite3")
    con.execute("CREATE TABLE embeddings (id INTEGER PRIMARY KEY, embedding_id TEXT, doc TEXT)")
    con.executemany(
        "INSERT INTO embeddings (embedding_id, doc) VALUES (?, ?)", [(f"id{i}", f"document {i}") for i in range(200)]
    )
    con.commit()
    con.close()
    rnd = __import__("random").Random(7)
    (seg / "data_level0.bin").write_bytes(bytes(rnd.getrandbits(8) for _ in range(300_000)))
    (seg / "header.bin").write_bytes(b"\x01\x02" * 50)
    (seg / "length.bin").write_bytes(b"\x00" * 16)
    (seg / "link_lists.bin").write_bytes(b"")
    (seg / "index_metadata.pickle").write_bytes(b"\x80\x04N.")
    # Fixed mtimes in the past, so "unchanged" also means "not touched".
    for p in [root, *root.rglob("*")]:
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return root


def _make_tar(path: Path, root: Path, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        tf.add(root, arcname=root.name)
    return path


def _evil_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tf:
        tf.addfile(_file_info("ok.txt", b"fine"), io.BytesIO(b"fine"))
        for m in members:
            tf.addfile(m, io.BytesIO(b"evil") if m.isfile() else None)
    return path


def _file_info(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def _snapshot_outside(tmp_path: Path, work: Path) -> set[str]:
    return {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if work not in p.parents and p != work}


# ---------------------------------------------------------------- directories


def test_directory_copy_is_identical_and_source_untouched(store, tmp_path):
    before = tree_hash(store)
    m = materialize(str(store), tmp_path / "work")
    assert isinstance(m, Materialized) and m.kind == "dir"
    assert m.source_hash_before == m.source_hash_after == before == tree_hash(store)
    assert m.source_unchanged
    # copy2 keeps mtimes, so even the mtime-sensitive hash matches the copy
    assert tree_hash(m.path) == before
    assert m.path.resolve().is_relative_to((tmp_path / "work").resolve())
    # the copy is private: writing to it leaves the source alone
    sqlite3.connect(m.path / "chroma.sqlite3").execute("DELETE FROM embeddings").connection.commit()
    assert tree_hash(store) == before


def test_tree_hash_sees_mtime_and_content(store):
    h = tree_hash(store)
    f = store / SEGMENT / "header.bin"
    os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_001))
    assert tree_hash(store) != h
    assert tree_hash(store, mtimes=False) == tree_hash(store, mtimes=False)


def test_workdir_inside_source_refused(store):
    with pytest.raises(SourceError, match="inside the source"):
        materialize(str(store), store / "work")
    assert not (store / "work").exists()


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        materialize(str(tmp_path / "nope"), tmp_path / "work")
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(SourceError, match="supported archive"):
        materialize(str(junk), tmp_path / "work")
    assert issubclass(SourceError, CompatError)


# ---------------------------------------------------------------- archives


@pytest.mark.parametrize("name,mode", [("store.tar.gz", "w:gz"), ("store.tgz", "w:gz"), ("store.tar", "w")])
def test_tar_extraction_returns_the_single_top_dir(store, tmp_path, name, mode):
    archive = _make_tar(tmp_path / name, store, mode)
    import hashlib

    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    m = materialize(str(archive), tmp_path / "work")
    assert m.kind == "tar" and m.path.name == "chroma_data"
    assert m.source_hash_before == m.source_hash_after == sha
    assert tree_hash(m.path) == tree_hash(store)  # tar keeps mtimes (to the second; ours are whole)
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == sha


def test_zip_extraction(store, tmp_path):
    archive = tmp_path / "store.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(store.rglob("*")):
            zf.write(p, p.relative_to(store).as_posix())  # no top dir: the store is the root
    before = archive.read_bytes()
    m = materialize(str(archive), tmp_path / "work")
    assert m.kind == "zip" and (m.path / "chroma.sqlite3").is_file()
    assert tree_hash(m.path, mtimes=False) == tree_hash(store, mtimes=False)
    assert m.source_unchanged and archive.read_bytes() == before


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    "case", ["dotdot", "absolute", "symlink-etc", "symlink-relative-escape", "hardlink-out", "device"]
)
def test_unsafe_tar_rejected_and_nothing_written_outside(tmp_path, case):
    abs_target = tmp_path / "abs_evil.txt"
    members = {
        "dotdot": [_file_info("../../../evil.txt", b"evil")],
        "absolute": [_file_info(str(abs_target), b"evil")],
        "symlink-etc": [_symlink("etc_link", "/etc"), _file_info("etc_link/evil.txt", b"evil")],
        "symlink-relative-escape": [_symlink("a/up", "../../../.."), _file_info("a/up/evil.txt", b"evil")],
        "hardlink-out": [],
        "device": [],
    }[case]
    if case == "hardlink-out":
        info = tarfile.TarInfo("passwd")
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
        members = [info]
    if case == "device":
        info = tarfile.TarInfo("null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        members = [info]
    archive = _evil_tar(tmp_path / f"{case}.tar", members)
    work = tmp_path / "work"
    outside_before = _snapshot_outside(tmp_path, work)
    sha = archive.read_bytes()
    with pytest.raises(SourceError) as exc:
        materialize(str(archive), work)
    message = str(exc.value)
    assert "\n" not in message and ("unsafe member" in message or "symlink member" in message)
    assert repr(members[0].name) in message
    assert _snapshot_outside(tmp_path, work) == outside_before
    assert not abs_target.exists()
    assert not list(work.rglob("evil.txt")) and not list(work.rglob("ok.txt"))  # checked before writing
    assert archive.read_bytes() == sha


def test_unsafe_zip_rejected(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../../evil.txt", "evil")
    with pytest.raises(SourceError, match=r"unsafe member '\.\./\.\./evil\.txt'"):
        materialize(str(archive), tmp_path / "work")
    assert not list(tmp_path.rglob("evil.txt"))


def test_internal_symlink_is_refused_too(tmp_path):
    """A Chroma store holds no links, so none is ever created, even one that stays inside
    (tests/test_trust_sources.py has the chains that made "safe" links dangerous)."""
    archive = _evil_tar(tmp_path / "ok.tar", [_symlink("latest", "ok.txt")])
    with pytest.raises(SourceError, match="symlink member 'latest' .* holds no links"):
        materialize(str(archive), tmp_path / "work")
    assert not any((tmp_path / "work").iterdir())


# ---------------------------------------------------------------- S3


def test_s3_prefix_equals_original_tree(store, tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="stores")
    upload_tree(s3, "stores", "prod/chroma/", store)
    s3.put_object(Bucket="stores", Key="prod/chroma/", Body=b"")  # console "folder" marker
    s3.put_object(Bucket="stores", Key="prod/chroma2/decoy", Body=b"x")  # a sibling prefix: not ours
    calls: list[tuple[int, int]] = []
    m = materialize(
        "s3://stores/prod/chroma",
        tmp_path / "work",
        endpoint_url=moto_server,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert m.kind == "s3" and m.source_unchanged
    assert tree_hash(m.path, mtimes=False) == tree_hash(store, mtimes=False)
    files = {p.relative_to(store).as_posix(): p.stat().st_size for p in store.rglob("*") if p.is_file()}
    assert {o.key.removeprefix("prod/chroma/"): o.size for o in m.objects} == files
    assert all(o.etag and "-" not in o.etag for o in m.objects)
    total = sum(files.values())
    assert calls and calls[-1] == (total, total)
    assert not (m.path / "decoy").exists()


def test_s3_single_archive_object(store, tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="archives")
    archive = _make_tar(tmp_path / "backup.tar.gz", store)
    s3.put_object(Bucket="archives", Key="nightly/backup.tar.gz", Body=archive.read_bytes())
    m = materialize("s3://archives/nightly/backup.tar.gz", tmp_path / "work", endpoint_url=moto_server)
    assert m.kind == "s3" and m.source_unchanged and m.path.name == "chroma_data"
    assert [o.key for o in m.objects] == ["nightly/backup.tar.gz"]
    assert m.objects[0].size == archive.stat().st_size
    assert tree_hash(m.path) == tree_hash(store)


def test_s3_missing_prefix_bucket_and_key(tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="empty")
    for url, pattern in [
        ("s3://empty/nothing/here/", "no objects at s3://empty/nothing/here/"),
        ("s3://no-such-bucket/x/", "no objects at s3://no-such-bucket/x/"),
        ("s3://empty/missing.tar.gz", "no objects at s3://empty/missing.tar.gz"),
    ]:
        with pytest.raises(SourceError, match=pattern) as exc:
            materialize(url, tmp_path / "work", endpoint_url=moto_server)
        assert "\n" not in str(exc.value)


def test_s3_unreachable_endpoint(tmp_path, monkeypatch):
    """Credentials are set here too: with xdist this test may run without the moto fixture."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="cannot reach the S3 endpoint") as exc:
        materialize("s3://b/p/", tmp_path / "work", endpoint_url=f"http://127.0.0.1:{port}", attempts=1)
    assert "\n" not in str(exc.value) and time.monotonic() - t0 < 10


def test_s3_access_denied(store, tmp_path, s3, moto_server, monkeypatch):
    """moto enforces IAM only once auth is switched on (``/moto-api/reset-auth``):
    a user with no policy is denied, and unknown keys are rejected."""
    s3.create_bucket(Bucket="private")
    upload_tree(s3, "private", "db/", store)
    key = user_without_policy(moto_server, "nobody")
    with moto_auth(moto_server):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        with pytest.raises(SourceError, match="access denied to s3://private/db/") as exc:
            materialize("s3://private/db/", tmp_path / "work", endpoint_url=moto_server, attempts=1)
        assert "\n" not in str(exc.value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        with pytest.raises(SourceError, match="access denied.*credentials rejected"):
            materialize("s3://private/db/", tmp_path / "work", endpoint_url=moto_server, attempts=1)


def test_s3_unsafe_key_rejected(tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="sneaky")
    s3.put_object(Bucket="sneaky", Key="db/ok.txt", Body=b"fine")
    s3.put_object(Bucket="sneaky", Key="db/../../../evil.txt", Body=b"evil")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="sneaky", Prefix="db/")["Contents"]]
    if "db/../../../evil.txt" not in listed:
        pytest.skip("this moto normalizes '..' in keys")
    with pytest.raises(SourceError, match="unsafe key"):
        materialize("s3://sneaky/db/", tmp_path / "work", endpoint_url=moto_server)
    assert not list(tmp_path.rglob("evil.txt"))


def test_package_imports_without_boto3(tmp_path):
    code = (
        "import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None\n"
        "import pytest_chroma_compat.snapshot as s\n"
        "try:\n    s.materialize('s3://b/p/', __import__('pathlib').Path(sys.argv[1]))\n"
        "except s.SourceError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "work")], capture_output=True, text=True, timeout=60
    )
    assert "need boto3" in out.stdout, out.stderr
