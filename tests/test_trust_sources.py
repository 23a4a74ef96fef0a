"""Hostile sources: nothing escapes the work directory, no disk is filled, nothing hangs, no secret leaks.

Every attack archive or tree is built here, then given to the real command
(``chroma-compat validate SOURCE --to 1.5.9 --workdir W``) as a user would run
it. Refusals happen before any release starts, so these are fast. Each case
proves four things: exit 2 with one line naming the problem, the canary (a
tree standing where the escape would land) unchanged, the source unchanged,
and nothing left in the work directory.

Where an escape would land: the extraction root is
``W/validate-*/tar-*/extracted``, so ``../../../../canary`` from there is the
canary next to ``W``.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_chroma_compat.common.redact import redact, split_credentials
from pytest_chroma_compat.snapshot import safecopy, sources
from pytest_chroma_compat.snapshot.safecopy import MiB, SafeTree, SourceError, parse_size
from pytest_chroma_compat.snapshot.sources import materialize, tree_hash

from .trust import Canary, cli, one_line

TO = "1.5.9"
UP = "../../../../canary"  # from the extraction root to the canary (see the module docstring)


# ---------------------------------------------------------------- building attacks


def _reg(name: str, data: bytes = b"data") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _sym(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def _hard(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def _tar(path: Path, members, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _zip(path: Path, entries: list[tuple[str, bytes, int | None]]) -> Path:
    """``(name, data, unix mode or None)``; a mode with S_IFLNK makes a symlink entry, as Info-ZIP does."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


class _FastZeros:
    """A deflate compressor for 1 MiB chunks of zeros: one full-flushed block, reused (a valid stream,
    ~1000:1), so a 2 GiB bomb takes half a second to build instead of six."""

    CHUNK = bytes(1 << 20)
    _c = zlib.compressobj(9, zlib.DEFLATED, -15)
    BLOCK = _c.compress(CHUNK) + _c.flush(zlib.Z_FULL_FLUSH)

    def compress(self, data: bytes) -> bytes:
        if data == self.CHUNK:
            return self.BLOCK
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    def flush(self) -> bytes:
        return zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _zip_bomb(path: Path, mib: int, monkeypatch) -> Path:
    """A zip holding one ``mib`` MiB file of zeros, ZIP_DEFLATED, about 1000 times smaller."""
    with monkeypatch.context() as m:
        m.setattr(zipfile, "_get_compressor", lambda *a, **k: _FastZeros())
        with (
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
            zf.open("chroma.sqlite3", "w", force_zip64=True) as fh,
        ):
            for _ in range(mib):
                fh.write(_FastZeros.CHUNK)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(
    source: Path | str,
    tmp_path: Path,
    canary: Canary,
    *needles: str,
    args: tuple[str, ...] = (),
    env: dict | None = None,
    timeout: float = 120,
    hash_source: bool = True,
) -> str:
    """Run validate on ``source``; exit 2, one line with every needle, nothing touched, nothing left."""
    src = Path(source)
    digest = None if not hash_source else tree_hash(src) if src.is_dir() else _sha(src) if src.is_file() else None
    work = tmp_path / "work"
    proc = cli(
        "validate", str(source), "--to", TO, "--workdir", str(work), "--no-contracts", *args, env=env, timeout=timeout
    )
    line = one_line(proc, 2, *needles)
    canary.assert_untouched()
    if digest is not None:
        assert (tree_hash(src) if src.is_dir() else _sha(src)) == digest, "the source changed"
    assert not work.exists() or not any(work.rglob("*")), f"left in the work directory: {list(work.rglob('*'))}"
    return line


# ---------------------------------------------------------------- archives: links


CHAIN = "a/a/a/a/../../../../canary"  # lexically "canary", inside; through ``a -> .`` on disk, the real canary


def test_symlink_chain_through_link_to_dot(tmp_path, canary):
    """Before: ``a -> .`` then ``seg -> a/a/a/a/../../../../canary`` passed the lexical check of the link
    target, and the copy held a link to another directory of the disk, which the target release then
    wrote into as if it were a segment directory."""
    archive = _tar(
        tmp_path / "chain.tar",
        [_reg("chroma.sqlite3"), _sym("a", "."), _sym("seg", CHAIN), _reg(f"{CHAIN}/victim.txt", b"owned")],
    )
    _refused(archive, tmp_path, canary, "symlink member 'a'", "holds no links", str(archive))


def test_link_to_dot_then_dotdot(tmp_path, canary):
    archive = _tar(tmp_path / "dot.tar", [_sym("link", "."), _reg("link/../../../../../canary/victim.txt")])
    _refused(archive, tmp_path, canary, "symlink member 'link'", "holds no links")


def test_symlink_to_absolute_path(tmp_path, canary):
    archive = _tar(tmp_path / "abs.tar", [_sym("abs", str(canary.root)), _reg("abs/victim.txt", b"owned")])
    _refused(archive, tmp_path, canary, "symlink member 'abs'", "refusing it")


def test_symlink_to_parent(tmp_path, canary):
    archive = _tar(tmp_path / "up.tgz", [_sym("up", UP), _reg("up/victim.txt", b"owned")], mode="w:gz")
    _refused(archive, tmp_path, canary, "symlink member 'up'")


@pytest.mark.parametrize("shape", ["direct", "chain", "hardlink-first"])
def test_hardlink_to_escaping_symlink(tmp_path, canary, shape):
    """Before: ``a -> .``, ``v -> a/a/a/a/../../../../canary/victim.txt``, ``copy`` hard-linked to ``v``
    copied the host file the chain pointed at into the extraction."""
    members = {
        "direct": [_sym("esc", f"{UP}/victim.txt"), _hard("copy", "esc")],
        "chain": [_sym("a", "."), _sym("esc", f"{CHAIN}/victim.txt"), _hard("copy", "esc")],
        "hardlink-first": [_hard("copy", "esc"), _sym("esc", f"{UP}/victim.txt")],
    }[shape]
    archive = _tar(tmp_path / "hl.tar", [_reg("chroma.sqlite3"), *members])
    needle = {
        "direct": "symlink member 'esc'",
        "chain": "symlink member 'a'",
        "hardlink-first": "not an earlier regular file",
    }[shape]
    _refused(archive, tmp_path, canary, needle)


@pytest.mark.parametrize(
    "target, needle",
    [
        ("missing.bin", "not an earlier regular file"),
        ("later.bin", "not an earlier regular file"),
        ("data", "not an earlier regular file"),  # a directory
        (f"{UP}/victim.txt", "points outside the archive"),
        ("/etc/passwd", "points outside the archive"),
    ],
)
def test_hardlink_only_to_an_earlier_regular_member(tmp_path, canary, target, needle):
    archive = _tar(tmp_path / "hl.tar", [_dir("data"), _reg("data/a.bin"), _hard("copy", target), _reg("later.bin")])
    _refused(archive, tmp_path, canary, "'copy'", needle)


def test_hardlink_to_earlier_member_becomes_a_copy(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar", [_dir("store"), _reg("store/a.bin", b"abc" * 1000), _hard("store/b.bin", "store/a.bin")]
    )
    m = materialize(str(archive), tmp_path / "work")
    a, b = m.path / "a.bin", m.path / "b.bin"
    assert b.read_bytes() == a.read_bytes() == b"abc" * 1000
    assert os.lstat(a).st_nlink == os.lstat(b).st_nlink == 1 and os.lstat(a).st_ino != os.lstat(b).st_ino
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_symlink()]


@pytest.mark.parametrize(
    "members, needle",
    [
        ([_reg(f"{UP}/victim.txt", b"owned")], "escapes the target with '..'"),
        ([_reg("a/../../b")], "escapes the target"),
        ([_reg("/tmp/absolute-evil.txt")], "absolute path"),
        ([_dir("lnk"), _reg("lnk/data"), _sym("lnk", UP), _reg("lnk/victim.txt")], "symlink member 'lnk'"),
        ([_dir("up"), _reg("up/../../../../../canary/victim.txt")], "escapes the target"),
        ([_reg("seg"), _reg("seg/victim.txt")], "its parent 'seg' is a file"),
        ([_reg("twice.bin", b"one"), _reg("twice.bin", b"two")], "the same file appears twice"),
        ([_reg("x/y"), _reg("x/../x/y")], "the same file appears twice"),
    ],
)
def test_member_names_are_decided_lexically(tmp_path, canary, members, needle):
    archive = _tar(tmp_path / "names.tar", [_reg("chroma.sqlite3"), *members])
    _refused(archive, tmp_path, canary, needle)
    assert not Path("/tmp/absolute-evil.txt").exists()


@pytest.mark.parametrize(
    "kind, needle", [(tarfile.CHRTYPE, "device"), (tarfile.BLKTYPE, "device"), (tarfile.FIFOTYPE, "FIFO")]
)
def test_device_and_fifo_members(tmp_path, canary, kind, needle):
    archive = _tar(tmp_path / "dev.tar", [_reg("chroma.sqlite3"), _special("null", kind)])
    _refused(archive, tmp_path, canary, "'null'", needle, "only files and directories")


def test_zip_symlink(tmp_path, canary):
    archive = _zip(
        tmp_path / "link.zip",
        [("chroma.sqlite3", b"x", 0o100644), ("up", UP.encode(), 0o120777), ("up/victim.txt", b"owned", 0o100644)],
    )
    _refused(archive, tmp_path, canary, "symlink member 'up'", "holds no links")


def test_zip_fifo_and_dotdot(tmp_path, canary):
    fifo = _zip(tmp_path / "fifo.zip", [("chroma.sqlite3", b"x", 0o100644), ("pipe", b"", 0o010644)])
    _refused(fifo, tmp_path, canary, "'pipe'", "FIFO")
    dotdot = _zip(tmp_path / "dotdot.zip", [("../../../../canary/victim.txt", b"owned", None)])
    _refused(dotdot, tmp_path, canary, "escapes the target")


# ---------------------------------------------------------------- archives: limits


def test_zip_bomb_refused_by_the_default_ratio(tmp_path, canary, monkeypatch):
    """2 GiB of zeros in a ~2 MiB zip: past 100x its size (and the 512 MiB floor), refused at once."""
    bomb = _zip_bomb(tmp_path / "bomb.zip", 2048, monkeypatch)
    assert bomb.stat().st_size < 4 * MiB
    t0 = time.monotonic()
    _refused(bomb, tmp_path, canary, "expands to more than", "--max-extract-bytes")
    assert time.monotonic() - t0 < 30


def test_tar_bomb_refused_by_max_extract_bytes(tmp_path, canary):
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("store/chroma.sqlite3")
        info.size = 64 * MiB
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    _refused(
        archive,
        tmp_path,
        canary,
        "expands to more than 5.0 MiB",
        "--max-extract-bytes",
        args=("--max-extract-bytes", "5M"),
    )


def test_archive_bigger_than_its_copy_may_be_is_not_even_hashed(tmp_path, canary):
    """A sparse 1 TiB "archive" would take hours to hash before any member is read."""
    archive = tmp_path / "huge.tar"
    with open(archive, "wb") as fh:
        fh.truncate(max(safecopy.free_space(tmp_path) * 4, 1 << 40))
    t0 = time.monotonic()
    _refused(
        archive, tmp_path, canary, "more than its copy may take", "--max-extract-bytes", hash_source=False, timeout=60
    )
    assert time.monotonic() - t0 < 30


def test_too_many_members(tmp_path, canary):
    archive = _tar(tmp_path / "many.tar", [_reg(f"f{i:03d}") for i in range(30)])
    _refused(archive, tmp_path, canary, "more than 10 members", "--max-members", args=("--max-members", "10"))
    zipped = _zip(tmp_path / "many.zip", [(f"f{i:03d}", b"x", None) for i in range(30)])
    _refused(zipped, tmp_path, canary, "more than 10 members", args=("--max-members", "10"))


def test_bytes_are_counted_as_written_not_as_declared(tmp_path, monkeypatch):
    """With the declared sizes ignored (as if they lied), the writer still stops at the limit."""
    bomb = _zip_bomb(tmp_path / "bomb.zip", 64, monkeypatch)
    written: list[int] = []
    real_write = safecopy.write_all

    def counting(fd, data):
        written.append(len(data))
        real_write(fd, data)

    monkeypatch.setattr(safecopy.Budget, "declare", lambda self, size: None)
    monkeypatch.setattr(safecopy, "write_all", counting)
    with pytest.raises(SourceError, match=r"expands to more than 8\.0 MiB"):
        materialize(str(bomb), tmp_path / "work", max_extract_bytes=8 * MiB)
    assert 0 < sum(written) <= 8 * MiB
    assert not any((tmp_path / "work").iterdir()), "the partial extraction was left behind"


def test_default_ratio_applies_above_the_floor(tmp_path, monkeypatch):
    monkeypatch.setattr(safecopy, "FLOOR", 1 * MiB)
    bomb = _zip_bomb(tmp_path / "bomb.zip", 64, monkeypatch)  # ~64 KiB: the limit is ~6.4 MiB
    with pytest.raises(SourceError, match=r"100x the archive's"):
        materialize(str(bomb), tmp_path / "work")


def test_limits_leave_a_real_store_alone(tmp_path):
    store = tmp_path / "chroma_data"
    (store / "seg").mkdir(parents=True)
    (store / "chroma.sqlite3").write_bytes(os.urandom(200_000))
    (store / "seg" / "data_level0.bin").write_bytes(bytes(3 * MiB))  # compresses ~1000x, under the floor
    archive = tmp_path / "s.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(store, arcname="chroma_data")
    m = materialize(str(archive), tmp_path / "work")
    assert tree_hash(m.path, mtimes=False) == tree_hash(store, mtimes=False)  # tar keeps whole seconds


def test_parse_size():
    assert parse_size("10G") == 10 << 30 and parse_size("500M") == 500 << 20 and parse_size("1.5k") == 1536
    assert parse_size("123") == 123 and parse_size("2GiB") == parse_size("2gb") == 2 << 30
    for bad in ("", "ten", "-1", "0", "5X"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_bad_limit_options_are_usage_errors(tmp_path):
    for args in (
        ("--max-extract-bytes", "lots"),
        ("--max-members", "0"),
        ("--s3-timeout", "-1"),
        ("--s3-timeout", "nan"),
    ):
        proc = cli("validate", str(tmp_path), "--to", TO, "--workdir", str(tmp_path / "w"), *args, timeout=60)
        assert proc.returncode == 2 and args[0] in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the tree writer itself


def test_safe_tree_never_writes_through_a_link_or_over_a_file(tmp_path, canary):
    """Even if something put a link inside the copy (nothing here does), writes do not follow it."""
    tree = SafeTree(tmp_path / "root", "test")
    os.symlink(str(canary.root), tmp_path / "root" / "planted")
    (tmp_path / "root" / "exists.bin").write_bytes(b"x")
    budget = safecopy.Budget("test", max_bytes=1 << 20, why_bytes="test", max_members=None)
    with pytest.raises(SourceError, match="not a directory of the copy"):
        tree.write("planted/victim.txt", "planted/victim.txt", [b"owned"], budget)
    with pytest.raises(SourceError, match="appears twice"):
        tree.write("exists.bin", "exists.bin", [b"owned"], budget)
    os.symlink(str(canary.root / "victim.txt"), tmp_path / "root" / "leaf")
    with pytest.raises(SourceError):
        tree.write("leaf", "leaf", [b"owned"], budget)
    tree.close()
    canary.assert_untouched()
    assert (tmp_path / "root" / "exists.bin").read_bytes() == b"x"


# ---------------------------------------------------------------- directory sources


def _store_dir(tmp_path: Path) -> Path:
    root = tmp_path / "chroma_data"
    (root / "seg").mkdir(parents=True)
    (root / "chroma.sqlite3").write_bytes(b"SQLite format 3\x00" + bytes(100))
    (root / "seg" / "header.bin").write_bytes(b"\x01" * 10)
    return root


def test_directory_with_symlink_out(tmp_path, canary):
    store = _store_dir(tmp_path)
    os.symlink(str(canary.root / "victim.txt"), store / "seg" / "length.bin")
    _refused(store, tmp_path, canary, "'seg/length.bin'", "points outside the source")


def test_directory_with_relative_symlink_out(tmp_path, canary):
    store = _store_dir(tmp_path)
    os.symlink("../../canary", store / "seg" / "more")
    _refused(store, tmp_path, canary, "'seg/more'", "outside the source")


def test_directory_with_symlink_loop(tmp_path, canary):
    store = _store_dir(tmp_path)
    os.symlink(".", store / "seg" / "loop")
    _refused(store, tmp_path, canary, "'seg/loop'", "points to a directory")


def test_directory_with_fifo(tmp_path, canary):
    """Before: shutil.copytree opened the FIFO and waited for a writer forever."""
    store = _store_dir(tmp_path)
    os.mkfifo(store / "seg" / "data_level0.bin")
    _refused(store, tmp_path, canary, "FIFO 'seg/data_level0.bin'", "only files and directories", timeout=60)


def test_directory_with_socket(tmp_path, canary):
    store = _store_dir(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(store / "s"))
        _refused(store, tmp_path, canary, "socket 's'", timeout=60)
    finally:
        sock.close()


def test_directory_symlink_to_a_file_inside_is_copied_as_a_file(tmp_path):
    store = _store_dir(tmp_path)
    os.symlink("header.bin", store / "seg" / "alias.bin")
    m = materialize(str(store), tmp_path / "work")
    alias = m.path / "seg" / "alias.bin"
    assert not alias.is_symlink() and alias.read_bytes() == b"\x01" * 10
    assert not [p for p in m.path.rglob("*") if p.is_symlink()]


def test_directory_bigger_than_the_free_space(tmp_path, canary):
    store = _store_dir(tmp_path)
    huge = store / "seg" / "data_level0.bin"
    with open(huge, "wb") as fh:  # sparse: takes no room, claims more than the disk has
        fh.truncate(max(safecopy.free_space(tmp_path) * 4, 1 << 40))
    before = sorted((p.relative_to(store), p.lstat().st_size, p.lstat().st_mtime_ns) for p in store.rglob("*"))
    t0 = time.monotonic()  # refused from the sizes alone: neither hashed nor copied (both would take hours)
    _refused(store, tmp_path, canary, "holds more than", "free in", timeout=60, hash_source=False)
    assert time.monotonic() - t0 < 30
    assert sorted((p.relative_to(store), p.lstat().st_size, p.lstat().st_mtime_ns) for p in store.rglob("*")) == before


def test_directory_entry_limit(tmp_path, canary):
    store = _store_dir(tmp_path)
    _refused(store, tmp_path, canary, "more than 2 entries", args=("--max-members", "2"))


# ---------------------------------------------------------------- the source argument itself


def test_source_is_a_fifo(tmp_path, canary):
    fifo = tmp_path / "store.tar"
    os.mkfifo(fifo)
    _refused(fifo, tmp_path, canary, "not a regular file or directory", "FIFO", timeout=60)


def test_source_is_a_character_device(tmp_path, canary):
    _refused("/dev/zero", tmp_path, canary, "not a regular file or directory", "character device", timeout=60)


def test_source_symlink_to_a_device(tmp_path, canary):
    link = tmp_path / "snapshot.tar.gz"
    os.symlink("/dev/zero", link)
    _refused(link, tmp_path, canary, "not a regular file or directory", timeout=60)


# ---------------------------------------------------------------- S3


class _SilentEndpoint:
    """Accepts connections on 127.0.0.1 and never answers: the endpoint that used to cost six minutes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)  # held open, never read from, never answered

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def silent_endpoint():
    endpoint = _SilentEndpoint()
    yield endpoint
    endpoint.close()


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def test_s3_endpoint_that_never_answers(tmp_path, canary, silent_endpoint):
    pytest.importorskip("boto3")
    t0 = time.monotonic()
    line = _refused(
        "s3://bucket/store/",
        tmp_path,
        canary,
        f"127.0.0.1:{silent_endpoint.port}",
        "did not answer",
        "3 attempt",
        args=("--endpoint-url", silent_endpoint.url, "--s3-timeout", "1"),
        env=_AWS_ENV,
        timeout=60,
    )
    assert time.monotonic() - t0 < 30, line
    assert len(silent_endpoint.conns) >= 3  # every attempt really went out


def test_s3_retries_are_reported_and_defaults_are_bounded(tmp_path, silent_endpoint, monkeypatch):
    pytest.importorskip("boto3")
    for k, v in _AWS_ENV.items():
        monkeypatch.setenv(k, v)
    notes: list[str] = []
    with pytest.raises(SourceError, match="did not answer within 0.5 s"):
        materialize(
            "s3://bucket/store/",
            tmp_path / "work",
            endpoint_url=silent_endpoint.url,
            s3_timeout=0.5,
            notify=notes.append,
        )
    assert [n for n in notes if "attempt 1 of 3 failed (no answer within 0.5 s); retrying" in n], notes
    assert len(notes) == 2  # attempts 1 and 2 are retried; the 3rd is the error
    s3 = sources._s3_client(silent_endpoint.url, None, None, sources.S3_ATTEMPTS)
    cfg = s3.client.meta.config
    assert (cfg.connect_timeout, cfg.read_timeout, cfg.retries["total_max_attempts"]) == (5, 15, 3)
    # worst case with the defaults: 3 reads of 15 s and two backoffs of at most 1 s and 2 s, under a minute
    assert 3 * cfg.read_timeout + 1 + 2 < 60


def test_redact_and_split_credentials():
    assert (
        redact('at "http://AKIA:se/cr+et@127.0.0.1:9000/b" and https://user@h/x')
        == 'at "http://***@127.0.0.1:9000/b" and https://***@h/x'
    )
    assert redact("s3://bucket/prefix/ and http://host:9000") == "s3://bucket/prefix/ and http://host:9000"
    assert split_credentials("http://AKIA:se/cr%2Bet@127.0.0.1:9000") == ("http://127.0.0.1:9000", "AKIA", "se/cr+et")
    assert split_credentials("http://minio:9000") == ("http://minio:9000", None, None)
    assert str(SourceError("cannot reach http://k:s@h")) == "cannot reach http://***@h"


class _Recorder(BaseHTTPRequestHandler):
    """An S3 endpoint that lists nothing and remembers each request's headers."""

    LISTING = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
        b'2006-03-01/"><Name>b</Name><Prefix>db/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>'
        b"<IsTruncated>false</IsTruncated></ListBucketResult>"
    )

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.LISTING)))
        self.end_headers()
        self.wfile.write(self.LISTING)

    def log_message(self, *args: object) -> None:
        pass


def test_credentials_in_the_endpoint_are_used_and_never_shown(tmp_path, canary, s3, moto_server):
    """The URL's key pair signs the requests (not the environment's), the URL sent has no userinfo,
    and the secret is in no output and no report, whether the validation gets far or fails early."""
    from .s3_server import upload_tree

    key_id, secret = "AKIAURLKEY0000000001", "url/secret+Value0123456789abcdefghijklmno"
    env = {**_AWS_ENV, "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENTKEY00", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    reports = {"--json": tmp_path / "r.json", "--markdown": tmp_path / "r.md", "--junit": tmp_path / "r.xml"}
    report_args = [a for flag, path in reports.items() for a in (flag, str(path))]
    outputs: list[str] = []

    def run(endpoint: str, *needles: str) -> None:
        for path in reports.values():
            path.unlink(missing_ok=True)
        proc = cli(
            "validate",
            "s3://creds/db/",
            "--to",
            TO,
            "--endpoint-url",
            endpoint,
            "--s3-timeout",
            "2",
            "--workdir",
            str(tmp_path / "work"),
            "--no-contracts",
            *report_args,
            env=env,
            timeout=120,
        )
        one_line(proc, 2, *needles)
        outputs.append(proc.stdout + proc.stderr)
        written = [path.read_text() for path in reports.values() if path.exists()]
        assert written, "no report was written"
        outputs.extend(written)

    # 1. who signs: an endpoint that records the Authorization header
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run(f"http://{key_id}:{secret}@127.0.0.1:{server.server_port}", "no objects at s3://creds/db/")
    finally:
        server.shutdown()
        server.server_close()
    seen = server.seen  # type: ignore[attr-defined]
    assert seen and all(f"Credential={key_id}/" in h.get("Authorization", "") for h in seen), seen
    assert all("@" not in h.get("Host", "") and secret not in str(h) for h in seen), seen
    # 2. a download that gets as far as the contents (moto accepts any key pair)
    s3.create_bucket(Bucket="creds")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8 not a store")
    upload_tree(s3, "creds", "db/", photos)
    run(f"http://{key_id}:{secret}@{moto_server.removeprefix('http://')}", "not a chroma persistent directory")
    # 3. an endpoint that is not there: botocore's message names the URL
    run(f"http://{key_id}:{secret}@127.0.0.1:{_closed_port()}", "cannot reach the S3 endpoint", "127.0.0.1")
    for text in outputs:
        assert secret not in text and "url%2Fsecret" not in text and f"{key_id}:" not in text, text
        assert "env-secret" not in text
    canary.assert_untouched()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_keys_that_climb_or_collide(tmp_path, canary, s3, moto_server):
    s3.create_bucket(Bucket="climb")
    s3.put_object(Bucket="climb", Key="db/chroma.sqlite3", Body=b"x")
    s3.put_object(Bucket="climb", Key="db/a/../../../../canary/victim.txt", Body=b"owned")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="climb", Prefix="db/")["Contents"]]
    assert "db/a/../../../../canary/victim.txt" in listed, listed  # this moto keeps '..' in keys
    _refused(
        "s3://climb/db/",
        tmp_path,
        canary,
        "unsafe key",
        "escapes the target",
        args=("--endpoint-url", moto_server),
        env=_AWS_ENV,
    )
    s3.create_bucket(Bucket="collide")
    s3.put_object(Bucket="collide", Key="db/b", Body=b"one")
    s3.put_object(Bucket="collide", Key="db/a/../b", Body=b"two")
    _refused(
        "s3://collide/db/",
        tmp_path,
        canary,
        "unsafe key",
        "appears twice",
        args=("--endpoint-url", moto_server),
        env=_AWS_ENV,
    )


def test_s3_listing_bigger_than_the_limit(tmp_path, canary, s3, moto_server):
    s3.create_bucket(Bucket="big")
    for i in range(3):
        s3.put_object(Bucket="big", Key=f"db/seg/{i}.bin", Body=bytes(MiB))
    _refused(
        "s3://big/db/",
        tmp_path,
        canary,
        "s3://big/db/ holds more than 1.5 MiB",
        args=("--endpoint-url", moto_server, "--max-extract-bytes", "1.5M"),
        env=_AWS_ENV,
    )
    _refused(
        "s3://big/db/",
        tmp_path,
        canary,
        "more than 2 objects",
        args=("--endpoint-url", moto_server, "--max-members", "2"),
        env=_AWS_ENV,
    )


def test_s3_listing_bigger_than_the_free_space(tmp_path, s3, moto_server, monkeypatch):
    s3.create_bucket(Bucket="nofit")
    s3.put_object(Bucket="nofit", Key="db/chroma.sqlite3", Body=bytes(MiB))
    monkeypatch.setattr(safecopy, "free_space", lambda path: safecopy.MARGIN + MiB)  # room for half a MiB
    with pytest.raises(SourceError, match=r"holds more than 512\.0 KiB .*free in"):
        materialize("s3://nofit/db/", tmp_path / "work", endpoint_url=moto_server)
    assert not any((tmp_path / "work").iterdir())


def test_refusal_messages_are_redacted_everywhere():
    err = SourceError("first line\nsecond http://a:b@c line")
    assert str(err) == "first line second http://***@c line"


def test_documented_defaults():
    """``validate --help`` and the docstrings state these numbers; change them together."""
    assert safecopy.RATIO == 100 and safecopy.FLOOR == 512 * MiB and safecopy.MARGIN == 512 * MiB
    assert safecopy.MAX_MEMBERS == 100_000 and safecopy.COPIES == 2
    assert sources.S3_ATTEMPTS == 3 and sources.S3_CONNECT_TIMEOUT == 5 and sources.S3_READ_TIMEOUT == 15
