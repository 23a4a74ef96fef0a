"""``chroma-compat validate`` on stores written by real releases, from a directory, archives and S3.

Every test checks the safety promise independently of the validator: the
source tree (contents and mtimes) or the S3 listing is hashed by the test
before and after, and must not change, whatever the verdict.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import inventory, tree_hash
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import MID, NEW, OLD, run_cli
from .s3_server import moto_auth, upload_tree, user_without_policy

pytest_plugins = ["pytester"]

LEGACY, FIRST_RUST, MID5 = "0.3.29", "1.0.21", "0.5.23"
WRITERS = (LEGACY, OLD, MID5, MID, FIRST_RUST, NEW)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """One sample store per release, plus the stores behind the findings, written once per module."""
    root = tmp_path_factory.mktemp("written")
    out = {}
    for version in WRITERS:
        with Release(version) as release:
            out[version] = stores.sample(release, root / version)
    with Release(OLD) as release:
        out["orphan"] = stores.orphaned_fulltext_row(release, root / "orphan")
        out["databases"] = stores.several_databases(release, root / "databases")
        out["orphan elsewhere"] = stores.orphaned_fulltext_row(release, root / "orphan-elsewhere", "acme", "prod")
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, copy_function=shutil.copy2)
    return dst


def _validate(source: str | Path, to: str, tmp_path: Path, **kw):
    """Validate, and prove with the test's own hash that the source was not touched."""
    before = tree_hash(source) if Path(source).is_dir() else None
    result = validate(str(source), to, workdir=tmp_path / "work", contracts=False, **kw)
    if before is not None:
        assert tree_hash(source) == before
    assert result.source.get("unchanged") in (True, None), result.source
    assert not any((tmp_path / "work").glob("validate-*")), "private copies were left behind"
    return result


def _failed(result) -> set[tuple[str, str | None]]:
    return {(c.name, c.collection) for c in result.failed}


@pytest.mark.parametrize(
    "writer,target",
    [
        (OLD, NEW),
        pytest.param(MID5, FIRST_RUST, marks=pytest.mark.slow),
        (MID, NEW),
        pytest.param(FIRST_RUST, NEW, marks=pytest.mark.slow),
        (NEW, NEW),
    ],
)
def test_safe_upgrades_of_real_stores(written, tmp_path, writer, target):
    result = _validate(written[writer], target, tmp_path)
    assert result.exit_code == 0, result.summary
    assert result.target_release == target and result.direction in ("upgrade", "same schema")
    # the writer is detected from the schema, not given
    assert writer in result.inventory["writer_range"]["versions"]
    assert {c.name for c in result.collections} == {"products-l2", "articles-cos"}
    for col in result.collections:
        assert col.source_count == col.target_count == col.records_compared == 120
        assert col.source_digest and col.target_digest
    names = {(c.name, c.collection) for c in result.checks}
    for check in ("count", "ids", "documents", "metadata", "embeddings", "query", "filters", "writable"):
        assert (check, "products-l2") in names
    assert result.source["hash_before"] == result.source["hash_after"]


@pytest.mark.parametrize("path", ["in-place", "export-import"])
def test_every_tenant_and_database_is_validated(written, tmp_path, path):
    """Collections in other tenants and databases are compared too, named ``tenant/database:name``."""
    result = _validate(written["databases"], NEW, tmp_path, path=path)
    assert result.exit_code == 0, result.summary
    others = {f"{t}/{d}:{n}" for t, d, n in stores.OTHER_DATABASES}
    counts = {c.name: c.records_compared for c in result.collections}
    assert counts == {"products-l2": 40, "articles-cos": 40, **dict.fromkeys(others, 40)}
    assert {c.collection for c in result.checks if c.name == "collections"} == {
        None,
        "acme/prod",
        "acme/staging",
        "globex/default_database",
    }
    for label in others:
        assert {c.name for c in result.checks if c.collection == label} >= {
            "count",
            "embeddings",
            "query",
            "filters",
            "writable",
        }
    # the same id in two databases is two records: a mix-up between them would show in the digests
    digests = {c.name: c.source_digest for c in result.collections}
    assert digests["acme/prod:orders"] != digests["acme/staging:orders"]


def test_finding_in_another_database_is_found(written, tmp_path):
    """Finding 1 in a collection outside the default database: its write check runs there too."""
    result = _validate(written["orphan elsewhere"], NEW, tmp_path)
    assert result.exit_code == 1
    assert _failed(result) == {("writable", "acme/prod:notes")}


def test_collection_in_no_listed_database_is_not_passed_silently(written, tmp_path):
    """A collection whose database row is gone cannot be opened by any client: an error, never a silent pass."""
    store = _copy(written["databases"], tmp_path / "store")
    conn = sqlite3.connect(store / "chroma.sqlite3")
    conn.execute("update collections set database_id = 'gone' where name = 'faq'")
    conn.commit()
    conn.close()
    result = _validate(store, NEW, tmp_path)
    assert result.exit_code == 2  # could not validate that collection: not "safe", and not a verdict either
    assert not result.failed and {(c.name, c.collection) for c in result.unchecked} == {("scope", None)}
    assert next(c for c in result.checks if c.name == "scope").evidence["not validated"] == ["gone:faq"]
    assert len(result.collections) == 4


@pytest.mark.slow
def test_collection_selection(written, tmp_path):
    """--collection: a plain name matches in every database, a label in one; an unknown one is exit 2."""
    result = _validate(written["databases"], NEW, tmp_path, collections=["orders", "globex/default_database:faq"])
    assert result.exit_code == 0, result.summary
    assert {c.name for c in result.collections} == {
        "acme/prod:orders",
        "acme/staging:orders",
        "globex/default_database:faq",
    }
    selection = next(c for c in result.checks if c.name == "selection")
    assert selection.status == "info" and set(selection.evidence["not validated"]) == {"products-l2", "articles-cos"}
    assert not any(c.collection is None and c.name == "collections" for c in result.checks)  # default db not compared
    # the default database by its full name; one name given as a plain string
    only = _validate(written["databases"], NEW, tmp_path, collections="default_tenant/default_database:products-l2")
    assert only.exit_code == 0 and [c.name for c in only.collections] == ["products-l2"]
    exported = _validate(written["databases"], NEW, tmp_path, path="export-import", collections=["orders"])
    assert exported.exit_code == 0, exported.summary
    assert {c.name for c in exported.collections} == {"acme/prod:orders", "acme/staging:orders"}
    proc = run_cli(
        "validate",
        str(written["databases"]),
        "--to",
        NEW,
        "--no-contracts",
        "--collection",
        "nope",
        "--workdir",
        str(tmp_path / "work"),
    )
    assert proc.returncode == 2 and "no collection 'nope' in this store" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_legacy_store_in_place_is_unsafe_and_export_import_is_safe(written, tmp_path):
    in_place = _validate(written[LEGACY], NEW, tmp_path)
    assert in_place.exit_code == 1
    assert in_place.inventory["format"] == "duckdb+parquet"
    collections = next(c for c in in_place.checks if c.name == "collections")
    assert collections.status == "fail" and "export-import" in collections.detail
    exported = _validate(written[LEGACY], NEW, tmp_path, path="export-import")
    assert exported.exit_code == 0, exported.summary
    assert sum(c.records_compared for c in exported.collections) == 240


def test_finding_orphaned_fulltext_row_breaks_writes_after_upgrade(written, tmp_path):
    """0.4.24 reads fine under 1.5.9 but refuses the next write: only a write check sees it."""
    result = _validate(written["orphan"], NEW, tmp_path)
    assert result.exit_code == 1
    assert _failed(result) == {("writable", "notes")}
    assert result.inventory["orphaned_fulltext_rows"] == 1
    assert "Failed to apply logs" in next(c for c in result.checks if c.name == "writable").detail


def test_rollback_is_judged_by_the_measured_checks_with_the_rule_as_a_caveat(written, tmp_path):
    """A 1.5.9 store 'validated' for 1.0.21: the measured open fails (a panic), and that is the verdict;
    the downgrade rule is a caveat that says what the open did, never "opens without complaint"."""
    result = _validate(written[NEW], FIRST_RUST, tmp_path)
    assert result.exit_code == 1 and result.direction == "rollback"
    rollback = next(c for c in result.checks if c.name == "rollback")
    assert rollback.status == "info" and rollback.evidence["unknown migrations"]
    opened = next(c for c in result.checks if c.name == "open")
    assert opened.status == "fail" and ("open", None) in _failed(result)
    assert "without complaint" not in rollback.detail and "failed to open it" in rollback.detail
    # --from naming a newer release than the target is a rollback too; --refuse-downgrade makes the rule decide
    forced = _validate(written[MID], MID5, tmp_path, from_=MID, refuse_downgrade=True)
    assert forced.exit_code == 1 and ("rollback", None) in _failed(forced)
    assert (
        "chromadb " + MID + ", newer than the target" in next(c for c in forced.checks if c.name == "rollback").detail
    )


@pytest.mark.slow
def test_archives_tar_and_zip(written, tmp_path):
    tgz = tmp_path / "snapshot.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(written[MID], arcname="chroma_data")
    zipped = tmp_path / "snapshot.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sorted(written[OLD].rglob("*")):
            zf.write(p, p.relative_to(written[OLD]).as_posix())
    for archive, writer in ((tgz, MID), (zipped, OLD)):
        digest = archive.read_bytes()
        result = _validate(archive, NEW, tmp_path)
        assert archive.read_bytes() == digest
        assert result.exit_code == 0, result.summary
        assert result.source["kind"] in ("tar", "zip") and result.source["unchanged"] is True
        assert writer in result.inventory["writer_range"]["versions"]


def test_s3_prefix_and_object(written, tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="snapshots")
    upload_tree(s3, "snapshots", "words/snapshot/latest/", written[OLD])
    with tarfile.open(tmp_path / "snap.tar.gz", "w:gz") as tf:
        tf.add(written[FIRST_RUST], arcname="chroma")
    s3.upload_file(str(tmp_path / "snap.tar.gz"), "snapshots", "words/snap.tar.gz")

    def listing():
        return sorted(
            (o["Key"], o["ETag"], o["LastModified"]) for o in s3.list_objects_v2(Bucket="snapshots")["Contents"]
        )

    before = listing()
    prefix = _validate("s3://snapshots/words/snapshot/latest/", NEW, tmp_path, endpoint_url=moto_server)
    assert prefix.exit_code == 0, prefix.summary
    assert prefix.source["kind"] == "s3" and prefix.source["objects"] == len(list(written[OLD].rglob("*.*")))
    obj = _validate("s3://snapshots/words/snap.tar.gz", NEW, tmp_path, endpoint_url=moto_server)
    assert obj.exit_code == 0, obj.summary
    assert listing() == before


def test_bad_sources_exit_2_with_one_line(written, tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="present")
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    not_a_store = tmp_path / "photos"
    not_a_store.mkdir()
    (not_a_store / "cat.jpg").write_bytes(b"\xff\xd8")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    cases = {
        "s3://present/no/such/prefix/": "no objects at s3://present/no/such/prefix/",
        "s3://absent-bucket/x/": "no objects at s3://absent-bucket/x/",
        str(evil): "escapes",
        str(tmp_path / "nowhere"): "no such file or directory",
        str(not_a_store): "not a Chroma persistent directory",
    }
    for source, message in cases.items():
        proc = run_cli(
            "validate",
            source,
            "--to",
            NEW,
            "--endpoint-url",
            moto_server,
            "--no-contracts",
            "--workdir",
            str(tmp_path / "work"),
            env=env,
        )
        assert proc.returncode == 2, (source, proc.stdout, proc.stderr)
        assert message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    proc = run_cli("validate", str(written[OLD]), "--to", "9.9.9", "--no-contracts")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_access_denied_exits_2(written, tmp_path, s3, moto_server):
    s3.create_bucket(Bucket="locked")
    upload_tree(s3, "locked", "db/", written[OLD])
    key = user_without_policy(moto_server, "validator")
    with moto_auth(moto_server):
        proc = run_cli(
            "validate",
            "s3://locked/db/",
            "--to",
            NEW,
            "--endpoint-url",
            moto_server,
            "--no-contracts",
            env={
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
    assert proc.returncode == 2
    assert "access denied to s3://locked/db/" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_truncated_sqlite_cannot_be_validated(written, tmp_path):
    store = _copy(written[MID], tmp_path / "truncated")
    with open(store / "chroma.sqlite3", "r+b") as fh:
        fh.truncate(40_000)
    result = _validate(store, NEW, tmp_path)
    assert result.exit_code == 2 and "damaged" in result.error


def test_missing_segment_dir(written, tmp_path):
    """Recoverable while the log still holds every record; lost vectors once the log was purged."""
    store = _copy(written[OLD], tmp_path / "rebuildable")
    segment = next(p for p in store.iterdir() if p.is_dir())
    shutil.rmtree(segment)
    result = _validate(store, NEW, tmp_path)
    assert result.exit_code == 0, result.summary
    assert result.inventory["missing_segment_dirs"][0]["recoverable"] is True

    with Release(MID) as release:  # 0.6 purges the log once the index is flushed (past 1000 records)
        big = stores.sample(release, tmp_path / "purged", records=1500, dim=4)
    inv = inventory.take(big)
    assert inv["automatically_purge"] is True and inv["wal"]["rows"] < 3000
    victim = next(c for c in inv["collections"] if c["name"] == "products-l2")
    shutil.rmtree(big / victim["segments"]["vector"])
    result = _validate(big, NEW, tmp_path)
    assert result.exit_code == 1
    assert ("integrity", None) in _failed(result)
    # the collection itself: its own release cannot read it ("error"), or the target differs ("fail")
    assert any(c.collection == "products-l2" for c in result.findings if c.name != "integrity")


def test_inventory_reads_without_trusting(written, tmp_path):
    """Counts, dimensions, spaces, log size and orphans from read-only SQLite; a pickle is never loaded."""
    store = _copy(written[OLD], tmp_path / "store")
    orphan = store / "00000000-1111-2222-3333-444444444444"
    orphan.mkdir()
    (orphan / "header.bin").write_bytes(b"x" * 10)
    marker = tmp_path / "pwned"
    (next(p for p in store.iterdir() if p.is_dir() and p != orphan) / "index_metadata.pickle").write_bytes(
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )
    before = tree_hash(store)
    inv = inventory.take(store)
    assert tree_hash(store) == before and not marker.exists()
    assert inv["format"] == "sqlite" and OLD in inv["writer_range"]["versions"]
    assert inv["tenants"] == ["default_tenant"]
    cols = {c["name"]: c for c in inv["collections"]}
    assert cols["products-l2"]["count"] == 120 and cols["products-l2"]["dimension"] == 8
    assert cols["articles-cos"]["space"] == "cosine" and cols["products-l2"]["space"] == "l2"
    assert inv["wal"]["rows"] == 240 and inv["wal"]["bytes"] > 0
    assert [o["dir"] for o in inv["orphaned_segment_dirs"]] == [orphan.name]
    assert any(k.endswith("index_metadata.pickle") for k in inv["pickles"])


@pytest.mark.slow
def test_small_batches_give_the_same_digests(written, tmp_path):
    """Paging is invisible: a 7-record page and the default page give identical per-collection digests."""
    a = _validate(written[MID], NEW, tmp_path)
    b = _validate(written[MID], NEW, tmp_path, batch_size=7)
    digest = lambda r: {c.name: (c.source_digest, c.target_digest) for c in r.collections}  # noqa: E731
    assert digest(a) == digest(b) and b.exit_code == 0


def test_cli_writes_all_reports(written, tmp_path):
    out = tmp_path / "reports"
    proc = run_cli(
        "validate",
        str(written["orphan"]),
        "--to",
        NEW,
        "--json",
        str(out / "r.json"),
        "--junit",
        str(out / "r.xml"),
        "--markdown",
        str(out / "r.md"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "NOT safe" in proc.stdout and "writable" in proc.stdout
    report = json.loads((out / "r.json").read_text())
    assert report["schema"] == "pytest-chroma-compat/validate-report" and report["exit_code"] == 1
    assert report["releases"]["source"] == OLD and report["releases"]["target"] == NEW
    assert report["contracts_crossed"], "0.4.24 -> 1.5.9 crosses measured contracts"
    suite = ET.parse(out / "r.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == len(report["checks"])
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["writable"]
    assert "writable" in (out / "r.md").read_text()


@pytest.mark.slow
def test_pytest_chroma_snapshot_option(written, pytester):
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("--chroma-snapshot", str(written["orphan"]), "--chroma-to", NEW, "-v")
    result.assert_outcomes(failed=1, passed=len([line for line in result.outlines if " PASSED" in line]))
    result.stdout.fnmatch_lines(
        ["*test_snapshot?writable-notes? FAILED*", "*chroma-compat validate*", "*NOT safe*writable*"]
    )
    ok = pytester.runpytest_subprocess("--chroma-snapshot", str(written[MID]), "--chroma-to", NEW)
    assert ok.ret == 0


def test_worker_never_opens_the_source(written, tmp_path):
    """Even the release that wrote the store reads a copy: its mtimes and the -wal/-shm files prove it."""
    store = _copy(written[MID5], tmp_path / "store")
    for p in [store, *store.rglob("*")]:
        os.utime(p, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    names = sorted(p.name for p in store.rglob("*"))
    result = _validate(store, NEW, tmp_path)
    assert result.exit_code == 0
    assert sorted(p.name for p in store.rglob("*")) == names
    assert all(p.stat().st_mtime_ns == 1_500_000_000_000_000_000 for p in store.rglob("*"))
    conn = sqlite3.connect(f"{(store / 'chroma.sqlite3').as_uri()}?mode=ro", uri=True)
    assert conn.execute("select count(*) from collections").fetchone()[0] == 2
    conn.close()
