"""Real-world store states get honest words: a crashed writer's hot journal, a WAL, a writer still at work.

A hot journal is what a writer killed mid-transaction leaves; every release
opens such a store (SQLite rolls the journal back on the first read-write
open), so validate must too, on its private copy, and never on the source,
whose journal must still be there afterwards. A writer still holding a
SQLite write lock on the source makes any copy suspect: validate stops with
one line naming it (exit 2), having written nothing to the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import store_state
from pytest_chroma_compat.snapshot.sources import tree_hash

from .conftest import MID, NEW, OLD
from .trust import Canary, cli, one_line

#: a writer killed mid-transaction: with a one-page cache its changes spill into the db file,
#: the original pages sit in the -journal, and nothing rolls them back
CRASH_MID_TRANSACTION = """
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
assert c.execute("pragma journal_mode").fetchone()[0] == "delete", "releases write rollback-journal stores"
c.execute("pragma cache_size=1")
c.execute("begin")
c.execute("update embeddings set seq_id = seq_id")
for table in ("embedding_metadata", "embeddings"):
    c.execute(f"delete from {table}")
os._exit(0)
"""

#: another tool switched the store to WAL and stopped before any checkpoint
WAL_LEFT_BEHIND = """
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
assert c.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
c.execute("pragma wal_autocheckpoint=0")
c.execute("update collection_metadata set str_value = 'from-the-wal' where key = 'team'")
os._exit(0)
"""

#: holds a SQLite lock until a line arrives on stdin; prints "ready" once it holds it
HOLD_LOCK = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for stmt in sys.argv[2:]:
    c.execute(stmt).fetchall()
print("ready", flush=True)
sys.stdin.readline()
c.execute("rollback")
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Tiny stores (2 collections x 20 records) written by real releases, copied per test."""
    root = tmp_path_factory.mktemp("store-state")
    out = {}
    for version in (OLD, NEW):
        with Release(version) as release:
            out[version] = stores.sample(release, root / version, records=20, dim=4)
    return out


def _copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    return dst


def _python(code: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _hot_journal(db: Path) -> bool:
    journal = db.with_name(db.name + "-journal")
    return journal.is_file() and journal.read_bytes()[:8] == store_state.JOURNAL_MAGIC


def _validate(store: Path, to: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """The real command with a JSON report; the source must hash the same before and after."""
    before = tree_hash(store)
    report = tmp_path / "report.json"
    proc = cli(
        "validate",
        str(store),
        "--to",
        to,
        "--workdir",
        str(tmp_path / "work"),
        "--no-contracts",
        "--json",
        str(report),
        *args,
    )
    assert tree_hash(store) == before, "the source changed"
    assert not list((tmp_path / "work").glob("validate-*")), "private copies were left behind"
    return proc, (json.loads(report.read_text()) if report.exists() else {})


@pytest.mark.parametrize("writer,target", [(NEW, NEW), (OLD, MID)])
def test_hot_journal_is_rolled_back_on_the_copy_not_the_source(written, tmp_path, canary: Canary, writer, target):
    store = _copy(written[writer], tmp_path / "store")
    _python(CRASH_MID_TRANSACTION, str(store / "chroma.sqlite3"))
    assert _hot_journal(store / "chroma.sqlite3"), "the crash did not leave a hot journal"
    proc, report = _validate(store, target, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "damaged" not in proc.stdout + proc.stderr
    assert _hot_journal(store / "chroma.sqlite3"), "the source's journal was rolled back: the source was written"
    assert store_state.ROLLED_BACK in report["inventory"]["notes"]
    # the verdict comes from the data: every committed record, none of the half-done deletes
    assert sorted((c["name"], c["source_count"], c["target_count"]) for c in report["collections"]) == [
        ("articles-cos", 20, 20),
        ("products-l2", 20, 20),
    ]
    canary.assert_untouched()


@pytest.mark.parametrize("writer", [NEW, OLD])
def test_wal_left_behind_is_applied_on_the_copy(written, tmp_path, writer):
    store = _copy(written[writer], tmp_path / "store")
    _python(WAL_LEFT_BEHIND, str(store / "chroma.sqlite3"))
    assert (store / "chroma.sqlite3-wal").stat().st_size > 0
    proc, report = _validate(store, NEW, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (store / "chroma.sqlite3-wal").stat().st_size > 0, "the source's WAL was checkpointed"
    assert any("write-ahead log" in n for n in report["inventory"]["notes"]), report["inventory"]
    # the committed change that lives only in the WAL is what the inventory read
    assert {c["metadata"]["team"] for c in report["inventory"]["collections"]} == {"from-the-wal"}


def test_cold_journal_is_no_crash(written, tmp_path):
    """A journal whose header is zeroed (PERSIST mode leftovers) holds no transaction: nothing to roll back."""
    store = _copy(written[NEW], tmp_path / "store")
    (store / "chroma.sqlite3-journal").write_bytes(b"\0" * 4096)
    proc, report = _validate(store, NEW, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert store_state.ROLLED_BACK not in report["inventory"].get("notes", [])


class _Holder:
    """A real second process holding a SQLite lock on the source until released."""

    def __init__(self, db: Path, *statements: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(db), *statements],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        self.proc.communicate(timeout=30)


@pytest.mark.parametrize(
    "statements,locked",
    [
        (("begin immediate",), "chroma.sqlite3"),  # RESERVED: a writer between its statements
        (("begin exclusive",), "chroma.sqlite3"),  # EXCLUSIVE: a writer committing
        (("pragma cache_size=1", "begin", "update embeddings set seq_id = seq_id"), "chroma.sqlite3"),  # mid-write
        (
            ("pragma journal_mode=wal", "begin immediate", "update embeddings set seq_id = seq_id"),
            "chroma.sqlite3-shm",
        ),  # a WAL-mode writer locks the -shm, not the database
    ],
    ids=["reserved", "exclusive", "mid-write", "wal-writer"],
)
def test_live_writer_is_refused_in_one_line(written, tmp_path, canary: Canary, statements, locked):
    store = _copy(written[NEW], tmp_path / "store")
    holder = _Holder(store / "chroma.sqlite3", *statements)
    try:
        proc, _ = _validate(store, NEW, tmp_path)
        line = one_line(
            proc,
            2,
            "another process is writing to this store",
            f"pid {holder.proc.pid}",
            f"write lock on {locked}",
            "quiescent snapshot",
        )
        assert "damaged" not in line
    finally:
        holder.release()
    canary.assert_untouched()


def test_a_reader_is_not_a_writer(written, tmp_path):
    """A process reading the store (SHARED lock, open transaction) must not be mistaken for a writer."""
    store = _copy(written[NEW], tmp_path / "store")
    holder = _Holder(store / "chroma.sqlite3", "begin", "select count(*) from embeddings")
    try:
        assert store_state.write_lock(store) is None
        proc, _ = _validate(store, NEW, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        holder.release()


def test_write_lock_names_its_holder_and_clears(written, tmp_path):
    """The lock query finds the holder's pid, and nothing once the writer has rolled back."""
    store = _copy(written[NEW], tmp_path / "store")
    holder = _Holder(store / "chroma.sqlite3", "begin immediate")
    try:
        lock = store_state.write_lock(store)
        assert lock is not None and lock.pid == holder.proc.pid and lock.file == "chroma.sqlite3"
    finally:
        holder.release()
    assert store_state.write_lock(store) is None


def test_the_lock_probe_never_follows_a_link_out_of_the_source(written, tmp_path, canary: Canary):
    """A source whose chroma.sqlite3 is a link to another store is not probed there (nothing outside the source
    is opened because of its contents), and is then refused as a link, in one line."""
    elsewhere = _copy(written[NEW], tmp_path / "elsewhere")
    store = _copy(written[NEW], tmp_path / "store")
    (store / "chroma.sqlite3").unlink()
    (store / "chroma.sqlite3").symlink_to(elsewhere / "chroma.sqlite3")
    holder = _Holder(elsewhere / "chroma.sqlite3", "begin immediate")
    try:
        assert store_state.write_lock(elsewhere) is not None  # the probe does see that writer...
        assert store_state.write_lock(store) is None  # ...and never reaches it through the link
        proc, _ = _validate(store, NEW, tmp_path)
    finally:
        holder.release()
    one_line(proc, 2, "symlink 'chroma.sqlite3'", "points outside the source")
    canary.assert_untouched()


def _super_journal_pointing_at(target: Path) -> bytes:
    """A hot journal whose trailer names ``target`` as its super-journal: SQLite's rollback reads that file and
    deletes it when it points nowhere back (the file format's super-journal record)."""
    import struct

    name = str(target).encode()
    header = (store_state.JOURNAL_MAGIC + struct.pack(">IIIII", 0, 0x1234, 0, 512, 4096)).ljust(512, b"\0")
    return header + name + struct.pack(">I", len(name)) + struct.pack(">I", sum(name)) + store_state.JOURNAL_MAGIC


@pytest.mark.parametrize("as_archive", [False, True])
def test_a_journal_naming_a_super_journal_is_refused(written, tmp_path, canary: Canary, as_archive):
    """Recovery would delete the canary's file (measured before the fix): refused before SQLite sees it."""
    import tarfile

    store = _copy(written[NEW], tmp_path / "store")
    (store / "chroma.sqlite3-journal").write_bytes(_super_journal_pointing_at(canary.root / "victim.txt"))
    source = store
    if as_archive:
        source = tmp_path / "evil.tar"
        with tarfile.open(source, "w") as tf:
            tf.add(store, arcname="store")
    before = tree_hash(store) if not as_archive else None
    proc = cli("validate", str(source), "--to", NEW, "--workdir", str(tmp_path / "work"), "--no-contracts")
    one_line(proc, 2, "names a super-journal", "refusing it")
    canary.assert_untouched()
    if before is not None:
        assert tree_hash(store) == before
    assert not list((tmp_path / "work").glob("validate-*"))


def test_a_recursive_view_cannot_hang_the_host(written, tmp_path, canary: Canary):
    """A view where Chroma keeps a table would be run by the host's read-only SQLite: refused, never run."""
    store = _copy(written[NEW], tmp_path / "store")
    _python(
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "c.execute('alter table embeddings rename to embeddings_real')\n"
        "c.execute('create view embeddings as with recursive r(x) as (select 1 union all select x + 1 from r) "
        "select x as id, x as segment_id from r')\n"
        "c.commit()\n",
        str(store / "chroma.sqlite3"),
    )
    proc, _ = _validate(store, NEW, tmp_path)
    one_line(proc, 2, "views where Chroma keeps tables", "embeddings")
    canary.assert_untouched()
