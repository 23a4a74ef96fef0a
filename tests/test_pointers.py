"""latest-pointer.txt: a small object or file naming the snapshot to validate is followed once, on a real S3 API
(moto's server on 127.0.0.1) and on disk, and the report says where it led."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import pointers
from pytest_chroma_compat.snapshot.safecopy import SourceError

from .conftest import NEW
from .s3_server import upload_tree
from .trust import cli, one_line

pytest.importorskip("boto3")
pytest.importorskip("moto")

STAMP_OLD, STAMP_NEW = "2026-11-30T03:00:00Z", "2026-12-01T03:00:00Z"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A real 1.5.9 store shaped like the receipts app: one collection per store, L2, structured ids."""
    with Release(NEW) as release:
        return stores.sample(release, tmp_path_factory.mktemp("pointer-store") / "store", records=12, dim=4)


@pytest.fixture
def bucket(s3, store) -> str:
    """Two timestamped snapshots (the older one holds junk, so following the wrong one fails) and pointers."""
    name = "receipts-snapshots"
    s3.create_bucket(Bucket=name)
    upload_tree(s3, name, f"words/snapshot/timestamped/{STAMP_NEW}/", store)
    s3.put_object(Bucket=name, Key=f"words/snapshot/timestamped/{STAMP_OLD}/cat.jpg", Body=b"\xff\xd8")
    s3.put_object(
        Bucket=name, Key="words/snapshot/latest-pointer.txt", Body=f"words/snapshot/timestamped/{STAMP_NEW}/\n".encode()
    )
    s3.put_object(Bucket=name, Key="words/snapshot/relative-pointer.txt", Body=f"timestamped/{STAMP_NEW}\n".encode())
    s3.put_object(
        Bucket=name,
        Key="words/snapshot/url-pointer.txt",
        Body=f"# moved by the compaction job\ns3://{name}/words/snapshot/timestamped/{STAMP_NEW}/\n".encode(),
    )
    s3.put_object(Bucket=name, Key="words/snapshot/pointer-to-pointer.txt", Body=b"words/snapshot/latest-pointer.txt\n")
    s3.put_object(Bucket=name, Key="words/snapshot/dangling-pointer.txt", Body=b"words/snapshot/nowhere/\n")
    s3.put_object(Bucket=name, Key="words/snapshot/escaping-pointer.txt", Body=b"../../../../etc/\n")
    return name


@pytest.mark.parametrize("pointer", ["latest-pointer.txt", "relative-pointer.txt", "url-pointer.txt"])
def test_an_s3_pointer_is_followed_once_and_recorded(bucket, moto_server, tmp_path, pointer):
    report = tmp_path / "report.json"
    proc = cli(
        "validate",
        f"s3://{bucket}/words/snapshot/{pointer}",
        "--to",
        NEW,
        "--endpoint-url",
        moto_server,
        "--no-contracts",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(report),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(report.read_text())
    assert doc["source"]["location"] == f"s3://{bucket}/words/snapshot/timestamped/{STAMP_NEW}/"
    assert doc["source"]["pointer"] == f"s3://{bucket}/words/snapshot/{pointer}"
    assert "followed pointer" in proc.stdout and STAMP_NEW in proc.stdout


@pytest.mark.parametrize(
    "pointer, needle",
    [
        ("pointer-to-pointer.txt", "a pointer is followed once"),
        ("dangling-pointer.txt", "no objects are there"),
        ("escaping-pointer.txt", "leaves its bucket's keys"),
    ],
)
def test_a_bad_s3_pointer_is_one_line(bucket, moto_server, tmp_path, pointer, needle):
    proc = cli(
        "validate",
        f"s3://{bucket}/words/snapshot/{pointer}",
        "--to",
        NEW,
        "--endpoint-url",
        moto_server,
        "--no-contracts",
        "--workdir",
        str(tmp_path / "work"),
    )
    one_line(proc, 2, needle)


def test_a_local_pointer_file_is_followed(store, tmp_path):
    """The EFS pattern: a pointer file beside the snapshot folders, updated atomically."""
    pointer = tmp_path / "latest-pointer.txt"
    pointer.write_text(f"{store}\n")
    followed = pointers.follow(str(pointer))
    assert followed == pointers.Followed(str(store.resolve()), str(pointer), str(store))
    proc = cli("validate", str(pointer), "--to", NEW, "--no-contracts", "--workdir", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "followed pointer" in proc.stdout
    (tmp_path / "again.txt").write_text(f"{pointer}\n")
    with pytest.raises(SourceError, match="followed once"):
        pointers.follow(str(tmp_path / "again.txt"))


def test_what_is_not_a_pointer_is_left_alone(store, tmp_path):
    """A store directory, an archive name, a big or binary file: not pointers."""
    assert pointers.follow(str(store)) == pointers.Followed(str(store))
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff" * 10)
    assert pointers.follow(str(tmp_path / "blob.bin")).pointer is None
    (tmp_path / "big.txt").write_text("x" * (pointers.MAX_BYTES + 1))
    assert pointers.follow(str(tmp_path / "big.txt")).pointer is None
    (tmp_path / "two.txt").write_text("a/\nb/\n")
    with pytest.raises(SourceError, match="holds 2 line"):
        pointers.follow(str(tmp_path / "two.txt"))
