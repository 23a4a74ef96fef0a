"""--pointer-template: a pointer object that holds only a version id (``latest-pointer.txt`` ->
``20261201T0300``) while the snapshot sits at ``<prefix>/timestamped/<id>/``. On a real S3 API
(moto's server on 127.0.0.1) and on disk; the followed location is recorded as for any pointer, and
a template or value that would leave the bucket's keys is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import pointers
from pytest_chroma_compat.snapshot.safecopy import SourceError

from .conftest import NEW
from .s3_server import upload_tree
from .trust import cli, one_line

pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest_plugins = ["pytester"]

STAMP = "20261201T0300"
TEMPLATE = "{dir}/timestamped/{value}/"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    with Release(NEW) as release:
        return stores.sample(release, tmp_path_factory.mktemp("template-store") / "store", records=8, dim=4)


@pytest.fixture
def bucket(s3, store) -> str:
    name = "receipts-versions"
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name)
        upload_tree(s3, name, f"receipts/timestamped/{STAMP}/", store)
        s3.put_object(Bucket=name, Key="receipts/timestamped/20261130T0300/cat.jpg", Body=b"\xff\xd8")
        s3.put_object(Bucket=name, Key=f"timestamped/{STAMP}/chroma.sqlite3", Body=b"root copy")
        for key, body in [
            ("receipts/latest-pointer.txt", f"# written by the nightly job\n{STAMP}\n"),
            ("latest-pointer.txt", f"{STAMP}\n"),
            ("receipts/escaping-pointer.txt", "..\n"),
            ("receipts/path-pointer.txt", f"timestamped/{STAMP}\n"),
            ("receipts/missing-pointer.txt", "20200101T0000\n"),
        ]:
            s3.put_object(Bucket=name, Key=key, Body=body.encode())
    return name


def _follow(moto_server: str, source: str, template: str = TEMPLATE) -> pointers.Followed:
    return pointers.follow(source, endpoint_url=moto_server, template=template)


def test_validate_follows_a_version_id_pointer_through_the_template_and_records_it(bucket, moto_server, tmp_path):
    report = tmp_path / "report.json"
    proc = cli(
        "validate",
        f"s3://{bucket}/receipts/latest-pointer.txt",
        "--to",
        NEW,
        "--endpoint-url",
        moto_server,
        "--pointer-template",
        TEMPLATE,
        "--no-contracts",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(report),
        "--allow-pre-existing",
    )  # the sample store's own defects are not the point
    assert proc.returncode == 0, proc.stdout + proc.stderr
    source = json.loads(report.read_text())["source"]
    assert source["location"] == f"s3://{bucket}/receipts/timestamped/{STAMP}/"
    assert source["pointer"] == f"s3://{bucket}/receipts/latest-pointer.txt" and source["pointer_names"] == STAMP
    assert "followed pointer" in proc.stdout and STAMP in proc.stdout


def test_the_template_is_filled_with_the_pointer_s_folder_and_value(bucket, moto_server):
    assert (
        _follow(moto_server, f"s3://{bucket}/latest-pointer.txt").location == f"s3://{bucket}/timestamped/{STAMP}/"
    )  # a pointer at the bucket's root: {dir} is empty
    assert (
        _follow(moto_server, f"s3://{bucket}/receipts/latest-pointer.txt", "timestamped/{value}").location
        == f"s3://{bucket}/timestamped/{STAMP}/"
    )  # no {dir}: from the bucket's root
    with pytest.raises(SourceError, match="no objects are there"):
        _follow(moto_server, f"s3://{bucket}/receipts/missing-pointer.txt")
    with pytest.raises(SourceError, match="needs SOURCE to be a pointer"):
        _follow(moto_server, f"s3://{bucket}/receipts/timestamped/{STAMP}/")  # a prefix: the template would do nothing


@pytest.mark.parametrize(
    "pointer, needle", [("escaping-pointer.txt", "not a plain name"), ("path-pointer.txt", "not a plain name")]
)
def test_a_value_that_is_not_a_plain_name_is_refused(bucket, moto_server, pointer, needle):
    with pytest.raises(SourceError, match=needle):
        _follow(moto_server, f"s3://{bucket}/receipts/{pointer}")
    proc = cli(
        "validate",
        f"s3://{bucket}/receipts/{pointer}",
        "--to",
        NEW,
        "--endpoint-url",
        moto_server,
        "--pointer-template",
        TEMPLATE,
        "--no-contracts",
    )
    one_line(proc, 2, needle)


@pytest.mark.parametrize(
    "template, needle",
    [
        ("../{value}/", "no '..'"),
        ("{dir}/{other}/", "only {dir} and {value}"),
        ("{dir}/timestamped/", "must hold {value}"),
        ("s3://elsewhere/{value}/", "no URL"),
        ("/srv/{value}", "not absolute"),
        ("{dir}/{value", "not a template"),
    ],
)
def test_a_bad_template_is_one_line_before_anything_is_read(template, needle, tmp_path):
    with pytest.raises(CompatError, match="--pointer-template"):
        pointers.check_template(template)
    proc = cli(
        "validate",
        "s3://any-bucket/latest-pointer.txt",
        "--to",
        NEW,
        "--pointer-template",
        template,
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--no-contracts",
    )
    one_line(proc, 2, "--pointer-template", needle)


def test_a_local_pointer_file_with_a_template(store, tmp_path):
    (tmp_path / "timestamped").mkdir()
    (tmp_path / "timestamped" / STAMP).symlink_to(store, target_is_directory=True)
    pointer = tmp_path / "latest-pointer.txt"
    pointer.write_text(f"{STAMP}\n")
    followed = pointers.follow(str(pointer), template=TEMPLATE)
    assert followed == pointers.Followed(str(store.resolve()), str(pointer), STAMP)
    pointer.write_text("../../etc\n")
    with pytest.raises(SourceError, match="not a plain name"):
        pointers.follow(str(pointer), template=TEMPLATE)


def test_the_plugin_twin_option(store, pytester, tmp_path):
    snapshots = tmp_path / "snaps"
    (snapshots / "timestamped").mkdir(parents=True)
    (snapshots / "timestamped" / STAMP).symlink_to(store, target_is_directory=True)
    (snapshots / "latest-pointer.txt").write_text(f"{STAMP}\n")
    pytester.makeini("[pytest]\n")
    bad = pytester.runpytest_subprocess(
        "--chroma-snapshot",
        str(snapshots / "latest-pointer.txt"),
        "--chroma-to",
        NEW,
        "--chroma-snapshot-pointer-template",
        "../{value}",
    )
    assert (
        bad.ret != 0
        and "chroma-compat: --chroma-snapshot-pointer-template '../{value}' must name a place"
        in bad.stdout.str() + bad.stderr.str()
    )
    assert "building an environment" not in bad.stdout.str() + bad.stderr.str()  # refused before any work
    ok = pytester.runpytest_subprocess(
        "--chroma-snapshot",
        str(snapshots / "latest-pointer.txt"),
        "--chroma-to",
        NEW,
        "--chroma-snapshot-pointer-template",
        TEMPLATE,
        "--chroma-snapshot-allow-pre-existing",
        "-v",
    )
    assert ok.ret == 0, ok.stdout.str()[-3000:]
